//! Helpers shared by the integration tests. Each test binary includes this with `mod support;`.
#![allow(dead_code)]

pub mod azurite;
pub mod two_sets;

use std::path::PathBuf;

/// The shared backup fixtures (`../shared/fixtures/backups`, or `LRS_FIXTURES`).
///
/// Returns `None` when the folder is missing, so a developer without it can still run the rest;
/// under `CI=true` a missing folder panics, so CI fails rather than skips.
pub fn fixtures_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("LRS_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/backups")
        });
    if dir.join("EXPECTED.json").is_file() {
        return Some(dir);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "backup fixtures not found at {} (CI=true: failing, not skipping)",
            dir.display()
        );
    }
    eprintln!("skipping: backup fixtures not found at {}", dir.display());
    None
}

/// The fixtures folder, or return from the test early (skip) outside CI.
#[macro_export]
macro_rules! fixtures_or_skip {
    () => {
        match support::fixtures_dir() {
            Some(dir) => dir,
            None => return,
        }
    };
}

/// A `Write` into a shared buffer, for capturing log output in tests that look for secrets.
#[derive(Clone, Default)]
pub struct Captured(pub std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Captured {
    /// Everything written so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
