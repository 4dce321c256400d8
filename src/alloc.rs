//! Settings of mimalloc, the binary's global allocator, applied by the binary and by the
//! executor benchmark alike so the benchmark's memory figure is the binary's (issue 21).
//!
//! mimalloc (v3) keeps freed pages resident for a second before it returns them to the OS
//! ("purge delay"); in a 100,000-shot run ~70 MB of the peak RSS was such pages. A delay of 0
//! returns them at once (BENCHMARKS.md, "Memory of the 100,000-shot run").
//!
//! mimalloc also asks for transparent huge pages on the memory it reserves at start-up, before
//! `main` can set its `allow_thp` option: a 2 MB page of which a little is used stays resident
//! whole. The process turns them off itself (`PR_SET_THP_DISABLE`), which applies to those
//! reservations too: 168–170 MB instead of 180–182 MB at that peak.

use std::ffi::{c_int, c_long};

// Links the static mimalloc into every binary that links this crate.
use mimalloc as _;

/// `mi_option_purge_delay` of `mi_option_t` in mimalloc's `mimalloc.h` (v2 and v3 alike);
/// `libmimalloc-sys` has no constant for it.
const MI_OPTION_PURGE_DELAY: c_int = 15;

// SAFETY: the prototype of `mi_option_set` in `mimalloc.h`, a C enum being a C `int`; the
// function stores the value of an option below `_mi_option_last` and has no other
// precondition. The symbol comes from the static mimalloc that `libmimalloc-sys` links.
unsafe extern "C" {
    safe fn mi_option_set(option: c_int, value: c_long);
}

/// Makes mimalloc return freed memory to the OS at once, unless `MIMALLOC_PURGE_DELAY` is
/// set (then mimalloc reads that), and, on Linux, turns transparent huge pages off for the
/// process unless `MIMALLOC_ALLOW_THP` is set. Call it first thing in `main`.
pub fn tune() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        mi_option_set(MI_OPTION_PURGE_DELAY, 0);
    }
    #[cfg(target_os = "linux")]
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // SAFETY: PR_SET_THP_DISABLE takes the flag and three zeros (prctl(2)); it touches no
        // memory of ours. Failure (an old kernel) leaves huge pages on, which is harmless.
        unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    unsafe extern "C" {
        safe fn mi_option_get(option: c_int) -> c_long;
    }

    /// Guards the index against a reordered `mi_option_t`: only the purge delay defaults to
    /// 1000 and reads `MIMALLOC_PURGE_DELAY`.
    #[test]
    fn tune_sets_the_purge_delay() {
        let from_env = std::env::var("MIMALLOC_PURGE_DELAY").ok();
        let expected = from_env.as_deref().map_or(1000, |v| v.parse().unwrap());
        assert_eq!(mi_option_get(MI_OPTION_PURGE_DELAY), expected);
        tune();
        let expected = if from_env.is_some() { expected } else { 0 };
        assert_eq!(mi_option_get(MI_OPTION_PURGE_DELAY), expected);
        #[cfg(target_os = "linux")]
        if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
            // SAFETY: PR_GET_THP_DISABLE takes four zeros and returns the flag (prctl(2)).
            assert_eq!(
                unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) },
                1
            );
        }
    }
}
