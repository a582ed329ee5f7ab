//! Output routing: where each input ends (DESIGN.md §3). An enriched
//! reading, HRV window or alert is encoded and sent to its topic; a rejected
//! reading goes to the DLQ with its original key and bytes and headers
//! naming the reason and its source; duplicates and erased patients'
//! readings are only counted.

use std::sync::Arc;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::BaseRecord;
use tracing::{debug, info, warn};

use super::PipelineError;
use super::backpressure::OutRecord;
use super::batch::Batch;
use super::hold::Outlet;
use crate::codec::Codec;
use crate::config::Topics;
use crate::kafka::PipelineProducer;
use crate::model::{ClinicianAlert, HrvWindow};
use crate::process::{Disposition, DlqReason, InputRecord, Rejection};
use crate::telemetry::Metrics;

/// Encodes outputs and sends them to their topics.
pub(super) struct Router {
    /// Sends, or holds outputs while a transaction commits.
    pub(super) outlet: Outlet,
    codec: Arc<Codec>,
    topics: Topics,
    metrics: Metrics,
    /// Reused encode buffer.
    buf: Vec<u8>,
}

impl Router {
    pub(super) fn new(
        producer: PipelineProducer,
        codec: Arc<Codec>,
        topics: Topics,
        metrics: Metrics,
    ) -> Self {
        Self {
            outlet: Outlet::new(producer),
            codec,
            topics,
            metrics,
            buf: Vec::with_capacity(1024),
        }
    }

    /// Sends what `disposition` says `record` became, counting it in `batch`.
    pub(super) async fn route(
        &mut self,
        record: &InputRecord<'_>,
        disposition: Disposition<'_>,
        now_ms: i64,
        batch: &mut Batch,
    ) -> Result<(), PipelineError> {
        match disposition {
            Disposition::Erased => {
                batch.counts.erased += 1;
                debug!(
                    partition = record.partition,
                    offset = record.offset,
                    "reading of an erased patient dropped"
                );
            }
            Disposition::Duplicate => {
                batch.counts.duplicates += 1;
                debug!(
                    partition = record.partition,
                    offset = record.offset,
                    "duplicate dropped"
                );
            }
            Disposition::Enriched(enriched) => {
                let kind = enriched.reading.measurement.kind();
                // Millisecond differences are far below f64's exact-integer range.
                #[allow(clippy::cast_precision_loss)]
                self.metrics
                    .event_time_lag
                    .record(now_ms.saturating_sub(enriched.reading.measured_at_ms) as f64 / 1000.0);
                match self.codec.encode_enriched(&enriched, &mut self.buf) {
                    Ok(()) => {
                        let out = BaseRecord::with_opaque_to(
                            &self.topics.enriched,
                            batch.deliveries.clone(),
                        )
                        .key(enriched.reading.patient_id.as_bytes())
                        .payload(&self.buf[..]);
                        self.outlet.send(out).await?;
                        batch.counts.enriched[kind as usize] += 1;
                        batch.counts.body_compositions +=
                            u64::from(enriched.body_composition.is_some());
                        batch.counts.bp_categories += u64::from(enriched.bp_category.is_some());
                    }
                    Err(e) => {
                        // A defect, not bad input: keep the reading in the DLQ.
                        warn!(partition = record.partition, offset = record.offset, error = %e, "enriched reading failed to encode");
                        let rejection = Rejection::new(DlqReason::ProcessingError, e.to_string());
                        self.dead_letter(record, &rejection, batch).await?;
                    }
                }
            }
            Disposition::Dlq(rejection) => {
                debug!(
                    partition = record.partition,
                    offset = record.offset,
                    reason = rejection.reason.as_str(),
                    "reading rejected"
                );
                self.dead_letter(record, &rejection, batch).await?;
            }
        }
        Ok(())
    }

    /// The original key and bytes, with headers naming the reason and the
    /// record's source.
    async fn dead_letter(
        &mut self,
        record: &InputRecord<'_>,
        rejection: &Rejection,
        batch: &mut Batch,
    ) -> Result<(), PipelineError> {
        let partition = record.partition.to_string();
        let offset = record.offset.to_string();
        let headers = OwnedHeaders::new_with_capacity(5)
            .insert(Header {
                key: "reason",
                value: Some(rejection.reason.as_str()),
            })
            .insert(Header {
                key: "detail",
                value: Some(rejection.detail.as_str()),
            })
            .insert(Header {
                key: "source_topic",
                value: Some(record.topic),
            })
            .insert(Header {
                key: "source_partition",
                value: Some(partition.as_str()),
            })
            .insert(Header {
                key: "source_offset",
                value: Some(offset.as_str()),
            });
        let mut out: OutRecord<'_> =
            BaseRecord::with_opaque_to(&self.topics.dlq, batch.deliveries.clone()).headers(headers);
        if let Some(key) = record.key {
            out = out.key(key);
        }
        if let Some(payload) = record.payload {
            out = out.payload(payload);
        }
        self.outlet.send(out).await?;
        batch.counts.dlq[rejection.reason as usize] += 1;
        Ok(())
    }

    /// Sends a clinician alert.
    ///
    /// # Errors
    /// An alert that does not encode stops the run: values are rounded to
    /// the schema's scale and far inside its precision, so it is a defect,
    /// and an alert must not vanish quietly (the batch is re-read after
    /// restart).
    pub(super) async fn alert(
        &mut self,
        alert: &ClinicianAlert,
        batch: &mut Batch,
    ) -> Result<(), PipelineError> {
        self.codec
            .encode_alert(alert, &mut self.buf)
            .map_err(PipelineError::AlertEncode)?;
        let out = BaseRecord::with_opaque_to(&self.topics.alerts, batch.deliveries.clone())
            .key(alert.patient_id.as_bytes())
            .payload(&self.buf[..]);
        self.outlet.send(out).await?;
        batch.counts.alerts[alert.rule as usize][alert.severity as usize] += 1;
        info!(
            rule = alert.rule.as_str(),
            severity = alert.severity.label(),
            "clinician alert raised"
        );
        Ok(())
    }

    /// Sends a closed HRV window.
    pub(super) async fn window(
        &mut self,
        window: &HrvWindow,
        batch: &mut Batch,
    ) -> Result<(), PipelineError> {
        if let Err(e) = self.codec.encode_hrv_window(window, &mut self.buf) {
            // Metrics are bounded far inside the schema's precision, so this
            // is a defect; say so loudly rather than stop the stream.
            tracing::error!(error = %e, "HRV window failed to encode and was not published");
            return Ok(());
        }
        let out = BaseRecord::with_opaque_to(&self.topics.hrv_windows, batch.deliveries.clone())
            .key(window.patient_id.as_bytes())
            .payload(&self.buf[..]);
        self.outlet.send(out).await?;
        batch.counts.hrv_windows[window.quality as usize] += 1;
        Ok(())
    }
}
