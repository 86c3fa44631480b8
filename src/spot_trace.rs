//! Real spot availability traces: replay with per-tick prices.
