//! The one error type of trace files (traffic and spot traces).

use std::fmt;

/// A problem in a trace file, with the file's own 1-based line number when
/// one line is to blame.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct TraceError {
    pub line: Option<usize>,
    pub message: String,
}

impl TraceError {
    pub fn at(line: usize, message: impl Into<String>) -> Self {
        TraceError { line: Some(line), message: message.into() }
    }
    /// A problem with the file as a whole.
    pub fn whole(message: impl Into<String>) -> Self {
        TraceError { line: None, message: message.into() }
    }
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}
