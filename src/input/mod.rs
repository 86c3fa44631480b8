//! The bottom of the reading stack: TOML documents as trees that remember
//! their lines, the one error type a user's input gets, its hints, and the
//! typed getters of one table. Any layer may use it; it imports no model.

pub mod bench;
pub mod error;
pub mod section;
pub mod tree;

pub use error::{InputError, Origin, Warning};
pub use section::Section;

/// Helpers for the readers' tests.
#[cfg(test)]
pub(crate) mod test_files {
    /// A temporary folder holding `files` (name, text), folders created.
    pub fn with_files(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }
}
