//! `vitalstream tail <topic>`: a topic's records as JSON lines.
//!
//! Reads `read_committed` (nothing of an aborted or open transaction shows)
//! through a manually assigned consumer: no consumer group is joined and no
//! offset committed, so tailing never disturbs the pipeline. Every record
//! is one line: its coordinates, key, headers and value decoded with its
//! writer schema ([`WriterSchemas`]); DLQ records show their headers and
//! the original bytes in base64 (and decoded, when they decode); the state
//! changelog shows keys and base64 values.

use std::future::Future;
use std::io::Write;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{Map, Value as Json, json};

use super::ToolError;
use super::avro_json::{WriterSchemas, base64};
use crate::config::Config;
use crate::kafka::client_config;
use crate::registry::SchemaRegistry;

/// Options of `vitalstream tail`.
#[derive(Debug, Clone, clap::Args)]
pub struct TailArgs {
    /// Topic to print (any topic; those of the configuration are decoded by kind).
    pub topic: String,
    /// TOML configuration file: `[kafka]` connection, `[topics]`,
    /// `[schemas]` and `[schema_registry]`; `VITALSTREAM_*` env variables override it.
    #[arg(long, short)]
    pub config: Option<std::path::PathBuf>,
    /// Bootstrap servers, `HOST:PORT[,HOST:PORT]`; overrides `kafka.brokers`.
    #[arg(long)]
    pub brokers: Option<String>,
    /// Start at the beginning of each partition (default: only new records).
    #[arg(long)]
    pub from_beginning: bool,
    /// Only records keyed by this patient id.
    #[arg(long)]
    pub patient: Option<String>,
    /// Stop after printing this many records.
    #[arg(long)]
    pub max: Option<u64>,
    /// Stop once no record arrived for this long, e.g. `5s` (default: run
    /// until ctrl-c).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub idle_timeout: Option<Duration>,
}

/// What a topic holds, by the configuration's topic names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TopicKind {
    Dlq,
    State,
    Avro,
}

/// Runs `tail` until `--max`, `--idle-timeout` or `shutdown`; returns the
/// number of records printed.
///
/// # Errors
/// [`ToolError`] when the topic does not exist or the consumer fails.
pub async fn tail(
    config: &Config,
    args: &TailArgs,
    out: &mut impl Write,
    shutdown: impl Future<Output = ()>,
) -> Result<u64, ToolError> {
    tokio::pin!(shutdown);
    let kind = if args.topic == config.topics.dlq {
        TopicKind::Dlq
    } else if args.topic == config.topics.state_topic(&config.kafka.group_id) {
        TopicKind::State
    } else {
        TopicKind::Avro
    };
    let mut schemas = if config.schema_registry.enabled() {
        WriterSchemas::from_registry(
            SchemaRegistry::new(&config.schema_registry).map_err(ToolError::Registry)?,
        )
    } else {
        WriterSchemas::embedded(config.schemas, &config.codec)
    };
    let consumer: StreamConsumer = client_config(&config.kafka)
        .set("group.id", format!("{}.tail", config.kafka.group_id))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("isolation.level", "read_committed")
        .create()
        .map_err(ToolError::Kafka)?;
    let partitions = super::partitions(&consumer, &args.topic).await?;
    let start = if args.from_beginning {
        Offset::Beginning
    } else {
        Offset::End
    };
    let mut assignment = TopicPartitionList::with_capacity(partitions.len());
    for p in partitions {
        assignment
            .add_partition_offset(&args.topic, p, start)
            .map_err(ToolError::Kafka)?;
    }
    consumer.assign(&assignment).map_err(ToolError::Kafka)?;
    let mut printed = 0_u64;
    loop {
        if args.max.is_some_and(|max| printed >= max) {
            return Ok(printed);
        }
        let idle = async {
            match args.idle_timeout {
                Some(t) => tokio::time::sleep(t).await,
                None => std::future::pending().await,
            }
        };
        let msg = tokio::select! {
            () = &mut shutdown => return Ok(printed),
            () = idle => return Ok(printed),
            msg = consumer.recv() => msg,
        };
        let msg = match msg {
            Ok(msg) => msg,
            Err(e) if crate::kafka::is_transient(&e) => continue,
            Err(e) => return Err(ToolError::Kafka(e)),
        };
        if let Some(patient) = &args.patient
            && msg.key() != Some(patient.as_bytes())
        {
            continue;
        }
        let line = render(&msg, kind, &mut schemas).await;
        match writeln!(out, "{line}").and_then(|()| out.flush()) {
            Ok(()) => printed += 1,
            // The reader went away (`| head`): done.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(printed),
            Err(e) => return Err(ToolError::Output(e)),
        }
    }
}

/// One record as a JSON object.
async fn render(msg: &BorrowedMessage<'_>, kind: TopicKind, schemas: &mut WriterSchemas) -> Json {
    let mut line = Map::new();
    line.insert("topic".into(), json!(msg.topic()));
    line.insert("partition".into(), json!(msg.partition()));
    line.insert("offset".into(), json!(msg.offset()));
    if let Some(ts) = msg.timestamp().to_millis() {
        line.insert("timestamp_ms".into(), json!(ts));
    }
    match msg.key().map(std::str::from_utf8) {
        Some(Ok(key)) => line.insert("key".into(), json!(key)),
        Some(Err(_)) => line.insert("key_base64".into(), json!(base64(msg.key().unwrap_or(&[])))),
        None => line.insert("key".into(), Json::Null),
    };
    if let Some(headers) = msg.headers() {
        let mut map = Map::new();
        for h in headers.iter() {
            let value = h.value.map(|v| match std::str::from_utf8(v) {
                Ok(text) => json!(text),
                Err(_) => json!(base64(v)),
            });
            map.insert(h.key.to_owned(), value.unwrap_or(Json::Null));
        }
        line.insert("headers".into(), Json::Object(map));
    }
    match (msg.payload(), kind) {
        (None, _) => {
            line.insert("value".into(), Json::Null);
        }
        (Some(payload), TopicKind::Dlq) => {
            line.insert("original_base64".into(), json!(base64(payload)));
            // Most dead letters still decode (unknown_patient, out_of_range):
            // show them readable too.
            if let Ok((id, value)) = schemas.decode(payload).await {
                line.insert("original_schema_id".into(), json!(id));
                line.insert("original".into(), value);
            }
        }
        (Some(payload), TopicKind::State) => {
            line.insert("value_base64".into(), json!(base64(payload)));
        }
        (Some(payload), TopicKind::Avro) => match schemas.decode(payload).await {
            Ok((id, value)) => {
                line.insert("schema_id".into(), json!(id));
                line.insert("value".into(), value);
            }
            Err(e) => {
                line.insert("value_base64".into(), json!(base64(payload)));
                line.insert("decode_error".into(), json!(e));
            }
        },
    }
    Json::Object(line)
}
