//! Counters that race tests read (feature `test-util`): how many times a presented one-time
//! code was compared with a stored one. Process-wide; a test that reads them resets them first
//! and runs alone in its process (nextest runs every test in a process of its own).

use std::sync::atomic::{AtomicU64, Ordering};

static CODE_JUDGEMENTS: AtomicU64 = AtomicU64::new(0);

/// A presented code was compared with a stored one.
pub fn code_judged() {
    CODE_JUDGEMENTS.fetch_add(1, Ordering::SeqCst);
}

/// Codes compared since the last [`reset`].
pub fn code_judgements() -> u64 {
    CODE_JUDGEMENTS.load(Ordering::SeqCst)
}

pub fn reset() {
    CODE_JUDGEMENTS.store(0, Ordering::SeqCst);
}
