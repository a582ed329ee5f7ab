//! Outputs held while a transaction commits (exactly_once).
//!
//! librdkafka accepts no records into a transaction while the previous one
//! commits, and the commit (offsets, EndTxn, markers) is a round trip of
//! tens to hundreds of milliseconds. The batch loop does not wait for it:
//! it reads and processes the next batches meanwhile, and their outputs
//! wait here, copied into one buffer, until the commit has ended. Then the
//! next transaction begins and they are sent in the order they were made
//! ([`Outlet::release`]); after an aborted commit they are dropped with the
//! rest of the held work ([`Outlet::discard`]), and the records are read
//! again. What is held counts against `processing.max_in_flight`, and
//! against [`HELD_MAX_BYTES`], so memory stays bounded.

use std::ops::Range;
use std::sync::Arc;

use rdkafka::message::OwnedHeaders;

use super::PipelineError;
use super::backpressure::{OutRecord, send};
use crate::kafka::{Deliveries, PipelineProducer};

/// Bytes of held keys and payloads beyond which consumption pauses until
/// the commit has ended.
pub(super) const HELD_MAX_BYTES: usize = 64 << 20;

/// Sends outputs to the producer, or holds them while a commit runs.
pub(super) struct Outlet {
    producer: PipelineProducer,
    holding: bool,
    held: Held,
}

/// Held records and the bytes of their keys and payloads.
#[derive(Default)]
struct Held {
    /// The topics of the held records (a handful: the output topics).
    topics: Vec<String>,
    bytes: Vec<u8>,
    records: Vec<HeldRecord>,
}

struct HeldRecord {
    topic: usize,
    partition: Option<i32>,
    key: Option<Range<usize>>,
    payload: Option<Range<usize>>,
    headers: Option<OwnedHeaders>,
    deliveries: Arc<Deliveries>,
}

impl Outlet {
    pub(super) fn new(producer: PipelineProducer) -> Self {
        Self {
            producer,
            holding: false,
            held: Held::default(),
        }
    }

    /// Sends `record`, or holds it while a commit runs.
    pub(super) async fn send(&mut self, record: OutRecord<'_>) -> Result<(), PipelineError> {
        if self.holding {
            self.held.push(record);
            return Ok(());
        }
        send(&self.producer, record).await
    }

    /// From now on, outputs are held until [`Self::release`] or
    /// [`Self::discard`].
    pub(super) fn hold(&mut self) {
        self.holding = true;
    }

    /// Records held.
    pub(super) fn held(&self) -> usize {
        self.held.records.len()
    }

    /// Whether the held records' bytes reached [`HELD_MAX_BYTES`].
    pub(super) fn held_full(&self) -> bool {
        self.held.bytes.len() >= HELD_MAX_BYTES
    }

    /// The commit has ended and the next transaction begun: sends the held
    /// records, oldest first, and stops holding.
    pub(super) async fn release(&mut self) -> Result<(), PipelineError> {
        self.holding = false;
        let mut held = std::mem::take(&mut self.held);
        for record in held.records.drain(..) {
            let mut out: OutRecord<'_> =
                OutRecord::with_opaque_to(&held.topics[record.topic], record.deliveries);
            out.partition = record.partition;
            out.key = record.key.map(|r| &held.bytes[r]);
            out.payload = record.payload.map(|r| &held.bytes[r]);
            out.headers = record.headers;
            send(&self.producer, out).await?;
        }
        // Keeps the allocations for the next commit.
        held.bytes.clear();
        self.held = held;
        Ok(())
    }

    /// The held records go with an aborted transaction; stops holding.
    pub(super) fn discard(&mut self) {
        self.holding = false;
        self.held.records.clear();
        self.held.bytes.clear();
    }
}

impl Held {
    fn push(&mut self, record: OutRecord<'_>) {
        let topic = match self.topics.iter().position(|t| t == record.topic) {
            Some(i) => i,
            None => {
                self.topics.push(record.topic.to_owned());
                self.topics.len() - 1
            }
        };
        let key = record.key.map(|k| self.copy(k));
        let payload = record.payload.map(|p| self.copy(p));
        self.records.push(HeldRecord {
            topic,
            partition: record.partition,
            key,
            payload,
            headers: record.headers,
            deliveries: record.delivery_opaque,
        });
    }

    fn copy(&mut self, bytes: &[u8]) -> Range<usize> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(bytes);
        start..self.bytes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_records_keep_their_bytes_topics_and_batch() {
        let mut held = Held::default();
        let batch = Arc::new(Deliveries::default());
        held.push(
            OutRecord::with_opaque_to("enriched", batch.clone())
                .key(&b"p-1"[..])
                .payload(&b"one"[..]),
        );
        held.push(OutRecord::with_opaque_to("dlq", batch.clone()).payload(&b"two"[..]));
        held.push(
            OutRecord::with_opaque_to("enriched", batch.clone())
                .key(&b"p-2"[..])
                .partition(2),
        );
        assert_eq!(held.topics, ["enriched", "dlq"]);
        let r: Vec<_> = held
            .records
            .iter()
            .map(|r| {
                (
                    held.topics[r.topic].as_str(),
                    r.partition,
                    r.key.clone().map(|k| &held.bytes[k]),
                    r.payload.clone().map(|p| &held.bytes[p]),
                )
            })
            .collect();
        assert_eq!(
            r,
            [
                ("enriched", None, Some(&b"p-1"[..]), Some(&b"one"[..])),
                ("dlq", None, None, Some(&b"two"[..])),
                ("enriched", Some(2), Some(&b"p-2"[..]), None),
            ]
        );
        // Nothing was enqueued: the batch's count starts at release.
        assert_eq!(batch.sent(), 0);
    }
}
