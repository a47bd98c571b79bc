//! The global allocator, jemalloc, and how promptly it hands freed memory back.
//!
//! Decoding a Sensor Logger batch allocates per reading field: glibc's malloc and free were 40%
//! of `record`'s CPU (perf), and a thread-caching allocator makes them cheap. jemalloc does that
//! as well as mimalloc did (`bench/record_replay.sh` readings: 3,367 batches/s against 3,066,
//! glibc 2,180), and unlike mimalloc or glibc it gives memory back to the OS while the process is
//! idle: mimalloc purges only from inside later allocations on the same threads, and glibc
//! returns only the top of its heaps, so after 10,000 connections closed or one 100 MB message
//! went through, the broker stayed tens to hundreds of MB larger for good.

use tikv_jemalloc_ctl::{Access, AsName, background_thread};

#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// How long freed pages stay mapped for reuse before they go back to the OS.
const DECAY_MS: isize = 1000;

/// For the broker, which frees what a burst took and may then sit idle for hours: a background
/// thread returns freed pages within about a second (`DECAY_MS`), and straight away (muzzy
/// decay 0: MADV_FREE'd pages would count in the RSS until the kernel wants them). Best effort:
/// a setting jemalloc refuses leaves its default (returned after some seconds of activity).
pub fn return_freed_memory_promptly() {
    // Arenas made from now on, then the ones that exist already (the others answer an error).
    let _ = b"arenas.dirty_decay_ms\0".name().write(DECAY_MS);
    let _ = b"arenas.muzzy_decay_ms\0".name().write(0isize);
    let arenas: u32 = b"arenas.narenas\0".name().read().unwrap_or(0);
    for i in 0..arenas {
        let _ = format!("arena.{i}.dirty_decay_ms\0").name().write(DECAY_MS);
        let _ = format!("arena.{i}.muzzy_decay_ms\0").name().write(0isize);
    }
    let _ = background_thread::write(true);
}
