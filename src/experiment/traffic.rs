//! Reads `[traffic]` into a `Traffic`.
