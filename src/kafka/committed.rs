//! Reads a partition's committed records at the protocol level, applying
//! `read_committed` from the log itself: each producer's transactional
//! batches are held until that producer's next control marker, kept on
//! COMMIT and dropped on ABORT; records of a transaction still open at the
//! end are not returned (they lie beyond the last stable offset).
//!
//! Why not a librdkafka consumer: librdkafka filters aborted records only
//! through the aborted-transaction list of the broker's fetch response, and
//! some Kafka-protocol brokers (tansu 0.6; see `tests/broker_limits.rs`)
//! send none, so aborted records would be read as if committed. The markers
//! are in the log on every broker, so this reader is right on all of them.
//! It speaks plaintext only, without version negotiation: a compatibility
//! mode (`kafka.changelog_reader = "log_markers"`) for such brokers, not
//! the production path ([`crate::kafka::StateReader`]).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, FetchResponse, MetadataRequest, MetadataResponse,
    RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use kafka_protocol::records::RecordBatchDecoder;
use thiserror::Error;

const FETCH_VERSION: i16 = 11;
const METADATA_VERSION: i16 = 5;
/// Largest response accepted, bytes.
const MAX_RESPONSE: usize = 256 << 20;
/// Bytes asked of the partition per fetch. A fetch's records are held
/// until they have been applied (a restore holds one fetch per partition
/// it reads in parallel): 2 MiB reads a changelog partition as fast as
/// 8 MiB on loopback, and keeps a restore's read buffer to a few MiB
/// (BENCHMARKS.md, "Restart memory at 100 k patients").
const FETCH_PARTITION_BYTES: i32 = 2 << 20;

/// One committed record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedRecord {
    /// Offset in the partition.
    pub offset: i64,
    /// Key.
    pub key: Option<Vec<u8>>,
    /// Value (`None`: tombstone).
    pub value: Option<Vec<u8>>,
    /// Headers in record order.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// One committed record whose key and value share the bytes of the fetch
/// that read them: no copy, no heap block per record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedRecord {
    /// Offset in the partition.
    pub offset: i64,
    /// Key.
    pub key: Option<Bytes>,
    /// Value (`None`: tombstone).
    pub value: Option<Bytes>,
    /// Headers in record order (none: no heap block).
    pub headers: Vec<(String, Option<Bytes>)>,
}

impl From<SharedRecord> for CommittedRecord {
    fn from(r: SharedRecord) -> Self {
        Self {
            offset: r.offset,
            key: r.key.map(|k| k.to_vec()),
            value: r.value.map(|v| v.to_vec()),
            headers: r
                .headers
                .into_iter()
                .map(|(k, v)| (k, v.map(|v| v.to_vec())))
                .collect(),
        }
    }
}

/// Why reading failed.
#[derive(Debug, Error)]
pub enum CommittedReadError {
    /// Network error talking to a broker.
    #[error("broker connection: {0}")]
    Io(#[from] std::io::Error),
    /// A response did not decode, or a request did not encode.
    #[error("kafka protocol: {0}")]
    Protocol(String),
    /// The broker answered with an error code.
    #[error("broker error code {code} for {what}")]
    Broker {
        /// Kafka error code.
        code: i16,
        /// What was asked.
        what: &'static str,
    },
    /// No progress within the deadline.
    #[error("reading the partition did not finish within {0:?}")]
    Timeout(Duration),
}

fn protocol(e: impl std::fmt::Display) -> CommittedReadError {
    CommittedReadError::Protocol(e.to_string())
}

/// A blocking connection to one broker.
struct Connection {
    stream: TcpStream,
    correlation: i32,
}

impl Connection {
    fn open(addr: &str, timeout: Duration) -> Result<Self, CommittedReadError> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            correlation: 0,
        })
    }

    fn call<Req, Resp>(
        &mut self,
        api: ApiKey,
        version: i16,
        request: &Req,
    ) -> Result<Resp, CommittedReadError>
    where
        Req: Encodable + HeaderVersion,
        Resp: Decodable + HeaderVersion,
    {
        self.correlation += 1;
        let mut header = RequestHeader::default();
        header.request_api_key = api as i16;
        header.request_api_version = version;
        header.correlation_id = self.correlation;
        header.client_id = Some(StrBytes::from_static_str("vitalstream-committed-reader"));
        let mut body = BytesMut::new();
        header
            .encode(&mut body, Req::header_version(version))
            .map_err(protocol)?;
        request.encode(&mut body, version).map_err(protocol)?;
        let len = i32::try_from(body.len()).map_err(protocol)?;
        self.stream.write_all(&len.to_be_bytes())?;
        self.stream.write_all(&body)?;
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size)?;
        let size = usize::try_from(i32::from_be_bytes(size)).map_err(protocol)?;
        if size > MAX_RESPONSE {
            return Err(protocol(format!("response of {size} bytes")));
        }
        let mut buf = vec![0u8; size];
        self.stream.read_exact(&mut buf)?;
        let mut buf = Bytes::from(buf);
        let header =
            ResponseHeader::decode(&mut buf, Resp::header_version(version)).map_err(protocol)?;
        if header.correlation_id != self.correlation {
            return Err(protocol("response to another request"));
        }
        Resp::decode(&mut buf, version).map_err(protocol)
    }
}

/// Every committed record of `topic`/`partition` from its start up to its
/// last stable offset, in offset order. `bootstrap` is a comma-separated
/// `host:port` list; the partition leader is looked up through it.
///
/// # Errors
/// [`CommittedReadError`]; blocking I/O, call it off the async workers.
pub fn read_committed(
    bootstrap: &str,
    topic: &str,
    partition: i32,
    timeout: Duration,
) -> Result<Vec<CommittedRecord>, CommittedReadError> {
    let mut reader = CommittedReader::open(bootstrap, topic, partition, timeout)?;
    let deadline = Instant::now() + timeout;
    let mut all = Vec::new();
    loop {
        let (records, at_end) = reader.poll()?;
        let progressed = !records.is_empty();
        all.extend(records);
        if at_end {
            return Ok(all);
        }
        if !progressed && Instant::now() >= deadline {
            return Err(CommittedReadError::Timeout(timeout));
        }
    }
}

/// Reads a partition's committed records fetch by fetch, from its start.
pub struct CommittedReader {
    conn: Connection,
    topic: String,
    partition: i32,
    offset: i64,
    txn: TxnFilter,
}

impl CommittedReader {
    /// Connects to the leader of `topic`/`partition`, looked up through the
    /// first reachable server of `bootstrap` (comma-separated `host:port`).
    ///
    /// # Errors
    /// [`CommittedReadError`] when no server answers; blocking I/O.
    pub fn open(
        bootstrap: &str,
        topic: &str,
        partition: i32,
        timeout: Duration,
    ) -> Result<Self, CommittedReadError> {
        let mut last = protocol("no bootstrap server");
        for server in bootstrap
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let opened = Connection::open(server, timeout).and_then(|mut conn| {
                match leader_of(&mut conn, topic, partition)? {
                    Some(addr) if addr != server => Connection::open(&addr, timeout),
                    _ => Ok(conn),
                }
            });
            match opened {
                Ok(conn) => {
                    return Ok(Self {
                        conn,
                        topic: topic.to_owned(),
                        partition,
                        offset: 0,
                        txn: TxnFilter::default(),
                    });
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// One fetch: the records it made readable (committed, in offset order)
    /// and whether the reader is now at the partition's last stable offset.
    /// At the end, a fetch waits up to 100 ms for more.
    ///
    /// # Errors
    /// [`CommittedReadError`]; blocking I/O.
    pub fn poll(&mut self) -> Result<(Vec<CommittedRecord>, bool), CommittedReadError> {
        let mut records = Vec::new();
        let (_, at_end) = self.poll_each(|r| {
            records.push(CommittedRecord::from(r));
            Ok::<_, CommittedReadError>(())
        })?;
        records.sort_by_key(|r| r.offset);
        Ok((records, at_end))
    }

    /// [`Self::poll`] record by record, without copying the records out of
    /// the fetched bytes or collecting a fetch's worth of them: each record
    /// goes to `each` as soon as it is committed (a record outside a
    /// transaction at once, a transaction's records at its commit marker,
    /// in offset order). Returns whether any record went to `each` and
    /// whether the reader is now at the last stable offset.
    ///
    /// # Errors
    /// [`CommittedReadError`] (blocking I/O), or what `each` returned.
    pub fn poll_each<E: From<CommittedReadError>>(
        &mut self,
        mut each: impl FnMut(SharedRecord) -> Result<(), E>,
    ) -> Result<(bool, bool), E> {
        let (end, records) = fetch(&mut self.conn, &self.topic, self.partition, self.offset)?;
        let mut any = false;
        for batch in complete_batches(records) {
            let set = RecordBatchDecoder::decode(&mut batch.clone()).map_err(protocol)?;
            for r in set.records {
                self.offset = self.offset.max(r.offset + 1);
                self.txn.push(r);
            }
            // A batch's last offset may be past its last surviving record
            // (compaction): continue after the whole batch.
            self.offset = self.offset.max(batch_end(&batch));
            for r in self.txn.take_committed() {
                any = true;
                each(r)?;
            }
        }
        Ok((any, self.offset >= end))
    }
}

/// `host:port` of the partition leader, when the metadata names one.
fn leader_of(
    conn: &mut Connection,
    topic: &str,
    partition: i32,
) -> Result<Option<String>, CommittedReadError> {
    let mut request = MetadataRequest::default();
    let mut t = MetadataRequestTopic::default();
    t.name = Some(TopicName(StrBytes::from_string(topic.to_owned())));
    request.topics = Some(vec![t]);
    let response: MetadataResponse = conn.call(ApiKey::Metadata, METADATA_VERSION, &request)?;
    let leader: Option<BrokerId> = response
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .find(|p| p.partition_index == partition)
        .map(|p| p.leader_id);
    Ok(leader.and_then(|id| {
        response
            .brokers
            .iter()
            .find(|b| b.node_id == id)
            .map(|b| format!("{}:{}", b.host.as_str(), b.port))
    }))
}

/// One fetch from `offset`: the partition's read_committed end (last
/// stable offset) and the raw record batches.
fn fetch(
    conn: &mut Connection,
    topic: &str,
    partition: i32,
    offset: i64,
) -> Result<(i64, Bytes), CommittedReadError> {
    let mut p = FetchPartition::default();
    p.partition = partition;
    p.current_leader_epoch = -1;
    p.fetch_offset = offset;
    p.log_start_offset = -1;
    p.partition_max_bytes = FETCH_PARTITION_BYTES;
    let mut t = FetchTopic::default();
    t.topic = TopicName(StrBytes::from_string(topic.to_owned()));
    t.partitions = vec![p];
    let mut request = FetchRequest::default();
    request.replica_id = BrokerId(-1);
    request.max_wait_ms = 100;
    request.min_bytes = 1;
    request.max_bytes = 32 << 20;
    request.isolation_level = 1;
    request.session_id = 0;
    request.session_epoch = -1;
    request.topics = vec![t];
    let response: FetchResponse = conn.call(ApiKey::Fetch, FETCH_VERSION, &request)?;
    if response.error_code != 0 {
        return Err(CommittedReadError::Broker {
            code: response.error_code,
            what: "fetch",
        });
    }
    let data = response
        .responses
        .into_iter()
        .flat_map(|t| t.partitions)
        .find(|p| p.partition_index == partition)
        .ok_or_else(|| protocol("fetch response without the partition"))?;
    if data.error_code != 0 {
        return Err(CommittedReadError::Broker {
            code: data.error_code,
            what: "fetch partition",
        });
    }
    let end = if data.last_stable_offset >= 0 {
        data.last_stable_offset
    } else {
        data.high_watermark
    };
    Ok((end, data.records.unwrap_or_default()))
}

/// The complete record batches of a fetch response's records (a broker may
/// end them with a partial batch).
fn complete_batches(mut records: Bytes) -> Vec<Bytes> {
    let mut batches = Vec::new();
    while records.len() >= 12 {
        let length = i32::from_be_bytes([records[8], records[9], records[10], records[11]]);
        let Ok(total) = usize::try_from(length).map(|l| l + 12) else {
            break;
        };
        if records.len() < total {
            break;
        }
        batches.push(records.split_to(total));
    }
    batches
}

/// Offset after a complete batch: base offset + last offset delta + 1.
fn batch_end(batch: &Bytes) -> i64 {
    if batch.len() < 27 {
        return 0;
    }
    // Layout: base offset (8), length (4), leader epoch (4), magic (1),
    // crc (4), attributes (2), last offset delta (4).
    let base = batch.slice(0..8).get_i64();
    let last_delta = batch.slice(23..27).get_i32();
    base + i64::from(last_delta) + 1
}

/// Applies read_committed per producer.
#[derive(Default)]
struct TxnFilter {
    committed: Vec<SharedRecord>,
    open: HashMap<i64, Vec<SharedRecord>>,
}

impl TxnFilter {
    fn push(&mut self, r: kafka_protocol::records::Record) {
        if r.control {
            // Control record key: version (i16), type (i16): 0 abort, 1 commit.
            let kind = r
                .key
                .as_ref()
                .filter(|k| k.len() >= 4)
                .map(|k| i16::from_be_bytes([k[2], k[3]]));
            let held = self.open.remove(&r.producer_id).unwrap_or_default();
            if kind == Some(1) {
                self.committed.extend(held);
            }
            return;
        }
        let record = SharedRecord {
            offset: r.offset,
            key: r.key,
            value: r.value,
            headers: r
                .headers
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        };
        if r.transactional {
            self.open.entry(r.producer_id).or_default().push(record);
        } else {
            self.committed.push(record);
        }
    }

    /// Records committed since the last call, in offset order; records of
    /// transactions still open stay held. The buffer keeps its capacity
    /// (a batch's records) for the next batch.
    fn take_committed(&mut self) -> std::vec::Drain<'_, SharedRecord> {
        self.committed.sort_by_key(|r| r.offset);
        self.committed.drain(..)
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::records::{Record, TimestampType};

    use super::*;

    fn record(offset: i64, producer: i64, transactional: bool, key: &'static [u8]) -> Record {
        Record {
            transactional,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: producer,
            producer_epoch: 0,
            timestamp_type: TimestampType::Creation,
            offset,
            sequence: 0,
            timestamp: 0,
            key: Some(Bytes::from_static(key)),
            value: Some(Bytes::from_static(b"v")),
            headers: Default::default(),
        }
    }

    /// A control record of `producer`: 1 commit, 0 abort.
    fn marker(offset: i64, producer: i64, kind: u8) -> Record {
        Record {
            control: true,
            key: Some(Bytes::from(vec![0, 0, 0, kind])),
            value: None,
            ..record(offset, producer, true, b"")
        }
    }

    fn keys(filter: &mut TxnFilter) -> Vec<(i64, Bytes)> {
        filter
            .take_committed()
            .map(|r| (r.offset, r.key.expect("key")))
            .collect()
    }

    #[test]
    fn records_are_released_when_committed_in_offset_order_and_share_the_fetched_bytes() {
        let mut f = TxnFilter::default();
        f.push(record(0, 7, true, b"a"));
        f.push(record(1, 8, true, b"aborted"));
        f.push(record(2, 9, false, b"plain"));
        assert_eq!(keys(&mut f), [(2, Bytes::from_static(b"plain"))]);
        f.push(marker(3, 8, 0));
        f.push(record(4, 7, true, b"b"));
        assert!(keys(&mut f).is_empty(), "open and aborted records are held");
        f.push(marker(5, 7, 1));
        let released: Vec<SharedRecord> = f.take_committed().collect();
        assert_eq!(
            released.iter().map(|r| r.offset).collect::<Vec<_>>(),
            [0, 4]
        );
        // No copy: the key still points into the bytes it was read from.
        assert_eq!(
            released[0].key.as_ref().map(|k| k.as_ptr()),
            Some(b"a".as_ptr())
        );
        assert!(keys(&mut f).is_empty());
        // A record converts to the owned form the tools read.
        let owned = CommittedRecord::from(released[1].clone());
        assert_eq!(owned.key.as_deref(), Some(&b"b"[..]));
        assert_eq!(owned.value.as_deref(), Some(&b"v"[..]));
    }
}
