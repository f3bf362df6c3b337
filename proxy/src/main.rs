//! The `ringside` binary. Everything lives in the library (`ringside_proxy::cli`) so the
//! integration tests exercise the same code.

// Nothing panics on input (ARCHITECTURE.md, "Invariants"); `unwrap_used` is the workspace's.
#![cfg_attr(
    not(test),
    deny(clippy::expect_used, clippy::panic, clippy::indexing_slicing)
)]

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Gives the memory mimalloc keeps cached for the calling thread, but no longer uses, back
/// to the system (each worker calls it once a second: `StartOptions::trim`).
fn trim() {
    // SAFETY: `mi_collect` has no preconditions; it only walks the calling thread's heap.
    unsafe { libmimalloc_sys::mi_collect(false) }
}

fn main() -> std::process::ExitCode {
    ringside_proxy::cli::main(Some(trim))
}
