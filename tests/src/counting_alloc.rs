//! A global allocator that counts allocations per thread, to prove that hot
//! paths never touch the heap. A test binary installs it with
//! `#[global_allocator] static A: CountingAlloc = CountingAlloc;` and reads
//! [`thread_allocations`] around the code under test; counting per thread
//! keeps the runtime's background threads out of the measurement.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

/// The system allocator, counting each allocation on the thread making it.
pub struct CountingAlloc;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

static ACTIVE: AtomicBool = AtomicBool::new(false);

// SAFETY: every method delegates to `System` with the caller's arguments;
// the bookkeeping is a const-initialised thread-local `Cell` and an atomic,
// neither of which allocates.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

fn count() {
    ACTIVE.store(true, Ordering::Relaxed);
    // `try_with`: during thread teardown the counter may be gone.
    let _ = ALLOCATIONS.try_with(|a| a.set(a.get() + 1));
}

/// Allocations (and reallocations) made by the calling thread so far.
pub fn thread_allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// Whether [`CountingAlloc`] is this binary's allocator (it has counted
/// something), so that a count of zero is not vacuous.
pub fn is_active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}
