//! The `border-release` binary: parses the command line, runs the command, and decides the exit
//! code: 0 done, 1 nothing applied (the error says why), 2 bad command line, 3 some input lines
//! rejected and the rest applied, 4 a batch committed whose release files could not be written
//! (every later command tries again).
//!
//! `serve` runs the daemon: it loads and checks the config, sets up the log, binds the API and
//! hands over to `daemon::run` until SIGTERM or SIGINT.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use border_release::cli::{Cli, Command};
use border_release::clock::Clock;
use border_release::{config, daemon};

// Intake and planning allocate many small strings; glibc's allocator spent a quarter of an
// intake's time consolidating and freeing them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve => serve(&cli.config),
        _ => border_release::cli::run(cli),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(config_file: &Path) -> anyhow::Result<ExitCode> {
    let config = config::load(config_file).map_err(|error| {
        anyhow::anyhow!("{error}\n(run `border-release check-config` for the full list)")
    })?;
    daemon::logging::init(&config.log)?;
    let clock = Clock::from_env().map_err(anyhow::Error::msg)?;
    if let Clock::Fixed(now) = clock {
        tracing::warn!(%now, "the clock is pinned by {}", border_release::clock::FAKE_NOW_VAR);
    }
    let options = daemon::Options::new(config.file.clone(), clock);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let listen = config.api.listen.clone();
    let result = runtime.block_on(async {
        // Signals are taken over before anything else, so that none kills the daemon half
        // started; a SIGHUP before the reload handler exists finds the config just read.
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("watching SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("watching SIGINT")?;
        let _hangups = signal(SignalKind::hangup()).context("watching SIGHUP")?;
        let terminated = async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM"),
                _ = int.recv() => tracing::info!("SIGINT"),
            }
        };
        let listener = daemon::Listener::bind(&listen).await?;
        let result = daemon::run(config, listener, options, terminated).await;
        // A socket this daemon bound goes with it (a clean stop removes it already).
        if let (Err(_), config::Listen::Unix(path)) = (&result, &listen) {
            let _ = std::fs::remove_file(path);
        }
        result
    });
    // A job abandoned at the stop deadline is not waited for.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    if let Err(error) = &result {
        tracing::error!(error = %format!("{error:#}"), "border-release stopped on an error");
    }
    result.map(|()| ExitCode::SUCCESS)
}
