//! Talking to systemd (`Type=notify`): READY, STOPPING, RELOADING with MONOTONIC_USEC, and the
//! watchdog keep-alive, sent only while the daemon is healthy. Outside systemd (no
//! `NOTIFY_SOCKET`) every call does nothing.

use std::sync::Arc;
use std::time::Duration;

use sd_notify::NotifyState;
use tokio::sync::watch;

use super::metrics::Metrics;

fn notify(states: &[NotifyState]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(error) = sd_notify::notify(states) {
        tracing::warn!(%error, "cannot notify systemd");
    }
}

pub fn ready() {
    notify(&[
        NotifyState::Ready,
        NotifyState::Status("taking in and releasing"),
    ]);
}

pub fn stopping() {
    notify(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// RELOADING=1 with the monotonic clock, as systemd 253's `notify-reload` expects and 252
/// accepts.
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => notify(&[NotifyState::Reloading, now]),
        Err(_) => notify(&[NotifyState::Reloading]),
    }
}

/// Half the watchdog interval systemd asks for, if it asks.
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled().map(|interval| interval / 2)
}

/// The engine may work on one job this long before the daemon counts as stuck.
const ENGINE_JOB_MAX: Duration = Duration::from_secs(300);

/// Sends WATCHDOG=1 every `every` while the daemon is healthy: the store readable, and the
/// engine not stuck on one job. A daemon that stops sending is restarted by systemd.
pub async fn keep_alive(
    every: Duration,
    metrics: Arc<Metrics>,
    mut stopping: watch::Receiver<bool>,
) {
    loop {
        let stuck = metrics
            .engine_busy_for()
            .is_some_and(|busy| busy > ENGINE_JOB_MAX);
        match (metrics.failing(), stuck) {
            (None, false) => notify(&[NotifyState::Watchdog]),
            (Some(why), _) => tracing::error!(reason = %why, "unhealthy: no watchdog keep-alive"),
            (None, true) => {
                tracing::error!("the engine is stuck on one job: no watchdog keep-alive")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stopping.wait_for(|stopping| *stopping) => return,
        }
    }
}
