//! Reads `interruptions = { model = "trace", ... }`.
