//! Reading a backup header from a local file with ranged reads (head and tail only), for `inspect`,
//! `check` and folder-backed rehearsals.
