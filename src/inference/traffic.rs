//! Traffic: rate traces, request traces, synthetic traffic; arrival processes.
