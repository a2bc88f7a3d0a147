//! `cargo xtask`: the deployer's command line for Represent, plus Represent's own
//! `tenants import|list|validate` and `bench emulator` (see `xtask::app`).

fn main() -> std::process::ExitCode {
    deployer::cli::main(xtask::app())
}
