//! Ctrl-C during `nnc run`: the first one asks training to stop after the
//! step in progress, so the run can save a resumable checkpoint and say how
//! to continue; a second one ends the process at once, as usual.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();

#[cfg(unix)]
extern "C" fn on_sigint(_: libc::c_int) {
    // Only async-signal-safe work here: an atomic store and `signal`.
    if let Some(f) = FLAG.get() {
        f.store(true, Ordering::SeqCst);
    }
    // SAFETY: restoring the default disposition is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_DFL);
    }
}

/// The flag the first Ctrl-C sets, with the handler installed.
pub fn install() -> Arc<AtomicBool> {
    let flag = FLAG.get_or_init(|| Arc::new(AtomicBool::new(false))).clone();
    #[cfg(unix)]
    // SAFETY: `on_sigint` only stores to an atomic and resets the handler.
    unsafe {
        libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t);
    }
    flag
}
