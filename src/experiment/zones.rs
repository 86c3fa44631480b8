//! Reads `[zones]`.
