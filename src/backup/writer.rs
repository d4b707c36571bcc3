//! The backup writer (not written yet).
