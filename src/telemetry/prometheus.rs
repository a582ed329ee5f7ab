//! The process-wide Prometheus recorder behind the `metrics` facade.
//!
//! Installed once per process (the `metrics` recorder is global); every
//! pipeline run in the process then reports into it, and `/metrics` renders
//! it. Histograms get explicit buckets so Grafana can compute quantiles
//! across instances with `histogram_quantile`.
//!
//! Process metrics (resident memory, CPU seconds, open files, threads; see
//! [`PROCESS_METRICS`]) come from the metrics-process collector, read from
//! the operating system on each scrape by [`render`]: the exporter has no
//! process collector of its own.

use std::sync::{LazyLock, OnceLock};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use metrics_process::Collector;

use super::names::*;

/// The installed recorder's handle; installs it on first use.
///
/// Returns `None` only if another recorder was installed first (a program
/// embedding vitalstream with its own recorder); metrics then go there.
pub fn prometheus() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE.get_or_init(install).as_ref()
}

fn install() -> Option<PrometheusHandle> {
    let builder = [
        PUBLISH_LATENCY,
        BATCH_DURATION,
        STATE_RESTORE,
        BACKPRESSURE_PAUSE,
        TRANSACTION_COMMIT,
    ]
    .into_iter()
    .try_fold(PrometheusBuilder::new(), |b, name| {
        b.set_buckets_for_metric(Matcher::Full(name.to_owned()), &LATENCY_BUCKETS)
    })
    .and_then(|b| {
        b.set_buckets_for_metric(Matcher::Full(EVENT_TIME_LAG.to_owned()), &EVENT_LAG_BUCKETS)
    });
    let handle = match builder.and_then(PrometheusBuilder::install_recorder) {
        Ok(handle) => handle,
        Err(e) => {
            tracing::warn!(error = %e, "Prometheus recorder not installed; /metrics will be empty");
            return None;
        }
    };
    for (name, help) in DESCRIBED {
        metrics::describe_counter!(name, help);
    }
    PROCESS.describe();
    PROCESS.collect();
    metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    Some(handle)
}

/// The process metrics collector (no prefix: `process_*`, the names
/// Prometheus' client libraries use, so existing dashboards work too).
static PROCESS: LazyLock<Collector> = LazyLock::new(Collector::default);

/// The Prometheus text exposition of every metric, the process metrics
/// collected just before; empty when no recorder could be installed.
pub fn render() -> String {
    match prometheus() {
        Some(handle) => {
            PROCESS.collect();
            handle.render()
        }
        None => String::new(),
    }
}
