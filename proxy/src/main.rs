//! The `ringside` binary. Everything lives in the library (`ringside_proxy::cli`) so the
//! integration tests exercise the same code.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    ringside_proxy::cli::main()
}
