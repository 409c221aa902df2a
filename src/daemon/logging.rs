//! The daemon's own log, through `tracing`: the systemd journal with structured fields, or
//! readable lines or JSON lines on standard error (`[log] format`). Events name orders, files,
//! lines and releases; consignee names and addresses appear only at debug level.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use crate::config::{Log, LogFormat};

/// Sets up the log once for the process. `auto` picks the journal when systemd connected
/// standard error to it (`JOURNAL_STREAM`), else readable lines.
pub fn init(log: &Log) -> anyhow::Result<()> {
    let filter = EnvFilter::builder().parse(&log.level)?;
    let format = match log.format {
        LogFormat::Auto if std::env::var_os("JOURNAL_STREAM").is_some() => LogFormat::Journald,
        LogFormat::Auto => LogFormat::Text,
        format => format,
    };
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Journald => {
            let journald = tracing_journald::layer()
                .map_err(|error| anyhow::anyhow!("log.format journald: {error}"))?
                .with_syslog_identifier("border-release".into());
            registry.with(journald).try_init()?;
        }
        LogFormat::Json => {
            registry
                .with(
                    tracing_subscriber::fmt::layer()
                        .json()
                        .with_writer(std::io::stderr),
                )
                .try_init()?;
        }
        LogFormat::Text | LogFormat::Auto => {
            registry
                .with(
                    tracing_subscriber::fmt::layer()
                        .with_writer(std::io::stderr)
                        .with_ansi(false),
                )
                .try_init()?;
        }
    }
    Ok(())
}
