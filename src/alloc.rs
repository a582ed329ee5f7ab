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
//!   immediate for the restore's duration and collects at its end, then
//!   puts the operator's purge delay (`MIMALLOC_PURGE_DELAY`) back, so the
//!   steady state keeps mimalloc's default (purging at once for the whole
//!   run costs ~16 % CPU per reading, docs/operations.md).
//!
//! This is the crate's one module with `unsafe` code: each call is a plain
//! FFI call with no pointer argument, measured before it was allowed
//! (STYLE.md: `unsafe_code` forbidden unless a measured need). In a process
//! whose global allocator is not mimalloc (the tests, the benches), the
//! mimalloc calls touch only mimalloc's own, unused heap.
#![allow(unsafe_code)]

use std::os::raw::c_long;

/// Returns the C library heap's free memory to the operating system
/// (glibc's `malloc_trim`; nothing elsewhere). Called once the patient
/// profiles are loaded: librdkafka's fetch buffers for the whole patients
/// topic are freed by then and would stay resident for the process's life.
pub fn release_c_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` takes no pointer and only releases free memory
    // of the malloc arenas; glibc makes it safe to call from any thread
    // while others allocate (it takes each arena's lock).
    unsafe {
        libc::malloc_trim(0);
    }
}

/// While held, mimalloc purges freed pages at once; dropped, it collects
/// what is free and restores the purge delay it found.
#[derive(Debug)]
#[must_use = "purges are immediate only while the guard lives"]
pub struct RestoreMemory {
    purge_delay: c_long,
}

impl RestoreMemory {
    /// Immediate purges from now until the guard is dropped.
    pub fn begin() -> Self {
        // SAFETY: option reads and writes take no pointer; mimalloc's options
        // are atomics, read by every thread at its next purge.
        let purge_delay = unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) };
        // SAFETY: as above.
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, 0) };
        Self { purge_delay }
    }
}

impl Drop for RestoreMemory {
    fn drop(&mut self) {
        // SAFETY: `mi_collect` takes no pointer; it frees this thread's empty
        // pages and purges the arenas' free ranges (other threads' heaps are
        // left to them). The option write is as in `begin`.
        unsafe {
            libmimalloc_sys::mi_collect(true);
            libmimalloc_sys::mi_option_set(PURGE_DELAY, self.purge_delay);
        }
    }
}

/// `mi_option_purge_delay` in mimalloc's option enum (v2 and v3 alike;
/// libmimalloc-sys names only some of the options).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

#[cfg(test)]
mod tests {
    use super::*;

    fn purge_delay() -> c_long {
        // SAFETY: as in `RestoreMemory::begin`.
        unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) }
    }

    #[test]
    fn a_restore_purges_at_once_and_then_keeps_the_operators_delay() {
        // SAFETY: as in `RestoreMemory::begin`.
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, 250) };
        {
            let _memory = RestoreMemory::begin();
            assert_eq!(purge_delay(), 0, "immediate purges while restoring");
        }
        assert_eq!(purge_delay(), 250, "the delay set before is back");
        release_c_heap();
    }
}
