//! The `border-release` binary: parses the command line, runs the command, and decides the exit
//! code: 0 done, 1 nothing applied (the error says why), 2 bad command line, 3 some input lines
//! rejected and the rest applied, 4 a batch committed whose release files could not be written
//! (every later command tries again).

use std::process::ExitCode;

use clap::Parser;

// Intake and planning allocate many small strings; glibc's allocator spent a quarter of an
// intake's time consolidating and freeing them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = border_release::cli::Cli::parse();
    match border_release::cli::run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
