//! Giving freed memory back to the operating system at the two points of a
//! start-up that leave the most of it behind: the patient-profile load and
//! a partition restore.
//!
//! The `vitalstream` binary allocates through mimalloc (src/main.rs), and
//! librdkafka through the C library's malloc. Both keep freed pages for
//! reuse, which is what a steady state wants, but a restart's peak resident
//! memory is then the live state plus what the load and the restore freed
//! on the way (BENCHMARKS.md, "Restart memory at 100 k patients"):
//!
//! - glibc keeps the ~25 MiB librdkafka freed after reading every profile:
//!   [`release_c_heap`] hands it back (`malloc_trim`);
//! - mimalloc purges freed pages a second after they are freed, so a
//!   restore's last second of freed table and buffer pages is still
//!   resident when the partition is ready: [`RestoreMemory`] makes purges
//!   immediate for the restore's duration, then puts the operator's purge
//!   delay (`MIMALLOC_PURGE_DELAY`) back, so the steady state keeps
//!   mimalloc's default (purging at once for the whole run costs ~16 % CPU
//!   per reading, docs/operations.md). A delay of 100 ms instead of zero
//!   kept half of what zero saves (BENCHMARKS.md).
//!
//! This is the crate's one module with `unsafe` code: plain FFI calls with
//! no pointer argument, measured before they were allowed (STYLE.md:
//! `unsafe_code` forbidden unless a measured need; .ci/run checks that no
//! other module allows it). In a process whose global allocator is not
//! mimalloc (the tests, the benches), the mimalloc calls touch only
//! mimalloc's own, unused heap.
#![allow(unsafe_code)]

use std::os::raw::c_long;
use std::sync::Mutex;

/// Returns the C library heap's free memory to the operating system
/// (glibc's `malloc_trim`; nothing elsewhere). Called once the patient
/// profiles are loaded: librdkafka's fetch buffers for the whole patients
/// topic are freed by then and would stay resident for the process's life.
pub(crate) fn release_c_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` takes no pointer and only releases free memory
    // of the malloc arenas; glibc makes it safe to call from any thread
    // while others allocate (it takes each arena's lock).
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Restores in progress, and the purge delay found when the first began.
/// Restores may overlap (nothing in the pipeline does so today): the first
/// sets the delay to zero, the last puts the saved one back.
static RESTORES: Mutex<(usize, c_long)> = Mutex::new((0, 0));

/// While any is held, mimalloc purges freed pages at once; when the last is
/// dropped, the purge delay found before is put back and the dropping
/// thread's free pages are collected.
#[derive(Debug)]
#[must_use = "purges are immediate only while the guard lives"]
pub(crate) struct RestoreMemory(());

impl RestoreMemory {
    /// Immediate purges from now until the guard is dropped. An operator's
    /// negative delay (`MIMALLOC_PURGE_DELAY=-1`: never purge) is kept.
    pub(crate) fn begin() -> Self {
        let mut restores = RESTORES.lock().unwrap_or_else(|e| e.into_inner());
        if restores.0 == 0 {
            let delay = purge_delay();
            restores.1 = delay;
            if delay > 0 {
                set_purge_delay(0);
            }
        }
        restores.0 += 1;
        Self(())
    }
}

impl Drop for RestoreMemory {
    fn drop(&mut self) {
        let mut restores = RESTORES.lock().unwrap_or_else(|e| e.into_inner());
        restores.0 -= 1;
        if restores.0 == 0 {
            set_purge_delay(restores.1);
            // SAFETY: `mi_collect` takes no pointer; it frees the calling
            // thread's empty pages and purges the arenas' free ranges, with
            // mimalloc's own locking (other threads' heaps are left to them).
            unsafe { libmimalloc_sys::mi_collect(true) };
        }
    }
}

/// `mi_option_purge_delay` in mimalloc's option enum (v2 and v3 alike;
/// libmimalloc-sys names only some of the options).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn purge_delay() -> c_long {
    // SAFETY: takes no pointer. The option is a plain `long` in mimalloc,
    // read (and on first use, set from the environment) by any thread
    // without a lock; `RESTORES` serialises this module's own accesses.
    unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) }
}

fn set_purge_delay(delay: c_long) {
    // SAFETY: takes no pointer. mimalloc documents option writes as not
    // thread-safe: threads freeing memory meanwhile read the option without
    // a lock. The write is one aligned word, not torn on the targets we
    // build, so such a thread sees the old or the new delay, and at worst
    // one purge happens a delay earlier or later; `RESTORES` serialises
    // this module's own writes.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, delay) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restores_purge_at_once_and_then_keep_the_operators_delay() {
        set_purge_delay(250);
        let first = RestoreMemory::begin();
        assert_eq!(purge_delay(), 0, "immediate purges while restoring");
        let second = RestoreMemory::begin();
        drop(first);
        assert_eq!(purge_delay(), 0, "another restore still runs");
        drop(second);
        assert_eq!(purge_delay(), 250, "the delay set before is back");

        set_purge_delay(-1);
        drop(RestoreMemory::begin());
        assert_eq!(
            purge_delay(),
            -1,
            "never purging stays the operator's choice"
        );
        set_purge_delay(1000);
    }
}
