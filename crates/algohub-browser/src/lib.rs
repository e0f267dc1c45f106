//! algohub's browser tests live in `tests/browser/` (one test binary); this
//! crate has no library code.
