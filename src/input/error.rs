//! The one kind of error a user's input gets: where, which key, what was
//! expected, and the nearest valid name.

use std::fmt;

/// Where a value came from: a line of a file, or a `--set` on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub file: String,
    pub line: Option<usize>,
}

impl Origin {
    pub fn file(file: &str, line: usize) -> Self {
        Origin { file: file.to_string(), line: Some(line) }
    }
    pub fn command_line() -> Self {
        Origin { file: "--set".to_string(), line: None }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}", self.file),
            None => write!(f, "{}", self.file),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct InputError {
    pub origin: Origin,
    /// The dotted key path, when the problem is with one key.
    pub key: Option<String>,
    pub message: String,
    pub hint: Option<String>,
}

impl InputError {
    pub fn new(origin: &Origin, key: Option<&str>, message: impl Into<String>) -> Self {
        InputError { origin: origin.clone(), key: key.map(str::to_string), message: message.into(), hint: None }
    }

    pub fn with_hint(mut self, hint: Option<String>) -> Self {
        self.hint = hint;
        self
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.origin)?;
        if let Some(key) = &self.key {
            write!(f, "`{key}`: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// Valid input that is almost surely a mistake (SPEC 1: warnings go to
/// stderr and the exit status stays 0). `message` names the key itself,
/// as in "max_batched_tokens = 512 is below 71% of prompts ...".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    pub origin: Origin,
    /// The dotted key path the warning is about.
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "warning: {}: {}", self.origin, self.message)
    }
}

/// The valid name closest to `wrong`, if any is close enough to be a typo.
pub fn nearest<'a>(wrong: &str, valid: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let wrong_lower = wrong.to_ascii_lowercase();
    valid
        .into_iter()
        .map(|v| (strsim::damerau_levenshtein(&wrong_lower, &v.to_ascii_lowercase()), v))
        .filter(|&(d, v)| d <= 2.max(v.len() / 3))
        .min_by_key(|&(d, _)| d)
        .map(|(_, v)| v)
}

/// "did you mean `x`?" for the nearest valid name.
pub fn did_you_mean<'a>(wrong: &str, valid: impl IntoIterator<Item = &'a str>) -> Option<String> {
    nearest(wrong, valid).map(|v| format!("did you mean `{v}`?"))
}

/// A number as messages print it: plainly in the usual range, in shortest
/// exponent form beyond it, so that `1e308` is not 309 digits.
pub fn number(x: f64) -> String {
    if x == 0.0 || !x.is_finite() || (1e-5..1e15).contains(&x.abs()) { x.to_string() } else { format!("{x:e}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_compactly() {
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(1e6), "1000000");
        assert_eq!(number(-3.0), "-3");
        assert_eq!(number(1e308), "1e308");
        assert_eq!(number(f64::MAX), "1.7976931348623157e308");
        assert_eq!(number(-2.5e-9), "-2.5e-9");
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(number(f64::INFINITY), "inf");
    }

    #[test]
    fn suggests_near_misses_only() {
        let keys = ["interval", "write", "restore", "on_notice"];
        assert_eq!(nearest("intervl", keys), Some("interval"));
        assert_eq!(nearest("restor", keys), Some("restore"));
        assert_eq!(nearest("on-notice", keys), Some("on_notice"));
        assert_eq!(nearest("banana", keys), None);
    }

    #[test]
    fn message_names_file_line_key_and_hint() {
        let e = InputError::new(&Origin::file("x.toml", 7), Some("training.wrk"), "unknown key")
            .with_hint(Some("did you mean `work`?".into()));
        assert_eq!(e.to_string(), "x.toml:7: `training.wrk`: unknown key\n  hint: did you mean `work`?");
    }
}
