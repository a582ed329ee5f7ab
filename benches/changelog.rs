//! Changelog volume and restore cost without a broker: the loadgen's
//! readings for N patients run through the processor in batches, the
//! changelog is taken as the pipeline takes it (one buffer per batch
//! at_least_once, one per transaction exactly_once), and the state is then
//! restored from the resulting log, record by record.
//!
//! Reports input bytes (key + value) against changelog bytes (key + value,
//! before Kafka's per-record overhead), records written and coalesced, the
//! processor + changelog CPU per reading, and restore time and live heap.
//!
//! Run: `cargo bench --bench changelog -- [patients] [readings] [batch]`
//! (defaults 10000, 300000 and processing.batch_max_messages' 5000; a
//! larger batch shows what taking the changes less often would coalesce).

mod fixtures;

use std::sync::Arc;
use std::time::Instant;

use vitalstream::codec::{Codec, SchemaIds};
use vitalstream::gateway::{Gateway, GatewayConfig};
use vitalstream::process::{InputRecord, ProfileTable};
use vitalstream::state::{ChangelogBuffer, ChangelogWriter, Restorer, StateRecord};
use xxhash_rust::xxh3::xxh3_64;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const NOW: i64 = 1_790_000_000_000;
const PARTITIONS: u64 = 3;
/// processing.batch_max_messages default.
const DEFAULT_BATCH: usize = 5_000;
/// Batches per transaction: commit_interval_ms 100 at ~100 k readings/s.
const BATCHES_PER_TXN: usize = 2;
/// Readings per second of event time (the backlog was produced at this rate).
const RATE: i64 = 50_000;

fn main() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with('-'));
    let patients: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let readings: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(300_000);
    let batch: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(DEFAULT_BATCH);
    let codec = Arc::new(Codec::new(SchemaIds::default()).expect("codec"));
    let mut gateway = Gateway::new(
        Codec::new(SchemaIds::default()).expect("codec"),
        GatewayConfig {
            patients,
            ..GatewayConfig::default()
        },
    );
    let table = ProfileTable::new();
    for (_, value) in gateway.profiles().expect("profiles") {
        table.upsert(codec.decode_profile(&value).expect("profile"));
    }
    let table = Arc::new(table);
    let records: Vec<_> = (0..readings)
        .map(|i| {
            gateway
                .next_record(NOW + i as i64 * 1000 / RATE)
                .expect("record")
        })
        .collect();
    let input_bytes: usize = records.iter().map(|r| r.key.len() + r.payload.len()).sum();
    println!("{patients} patients, {readings} readings, {input_bytes} input bytes");
    for (mode, batches_per_flush) in [("at_least_once", 1), ("exactly_once", BATCHES_PER_TXN)] {
        let processor = || fixtures::processor(&codec, &table);
        let mut p = processor();
        let mut writer = ChangelogWriter::new();
        let mut buffer = ChangelogBuffer::new();
        let mut log: Vec<StateRecord> = Vec::new();
        let (mut coalesced, mut offsets) = (0, [0_i64; PARTITIONS as usize]);
        let started = Instant::now();
        for (i, rec) in records.iter().enumerate() {
            let partition = (xxh3_64(rec.key.as_bytes()) % PARTITIONS) as usize;
            let record = InputRecord {
                topic: "raw",
                partition: partition as i32,
                offset: offsets[partition],
                key: Some(rec.key.as_bytes()),
                payload: Some(&rec.payload),
            };
            offsets[partition] += 1;
            let now = NOW + i as i64 * 1000 / RATE;
            p.process(&record, now);
            if (i + 1) % batch == 0 || i + 1 == records.len() {
                p.take_closed_windows(now);
                p.take_alerts(now);
                writer.take(&mut p, &mut buffer).expect("changelog");
                if ((i + 1) / batch).is_multiple_of(batches_per_flush) || i + 1 == records.len() {
                    coalesced += buffer.coalesced();
                    log.extend(buffer.drain());
                }
            }
        }
        let cpu = started.elapsed();
        let bytes: usize = log
            .iter()
            .map(|r| r.key.len() + r.value.as_ref().map_or(0, Vec::len))
            .sum();
        let mut by_store = [(0_usize, 0_usize); 12];
        for r in &log {
            let s = &mut by_store[usize::from(r.key[0]).min(11)];
            s.0 += 1;
            s.1 += r.key.len() + r.value.as_ref().map_or(0, Vec::len);
        }
        for (tag, name) in [
            (1, "meta"),
            (10, "dedup"),
            (3, "hrv patient"),
            (9, "hrv window chunks"),
            (5, "alerts head"),
            (11, "alert samples (slots)"),
            (7, "alert baseline"),
            (8, "alert pending"),
        ] {
            let (n, b) = by_store[tag];
            println!(
                "  {name}: {n} records, {b} bytes, {:.0} B/record",
                b as f64 / n.max(1) as f64
            );
        }
        println!(
            "{mode}: {} records ({coalesced} coalesced), {bytes} bytes = {:.2} x input; \
             processor + changelog {:.2} us per reading",
            log.len(),
            bytes as f64 / input_bytes as f64,
            cpu.as_secs_f64() * 1e6 / readings as f64,
        );
        let fresh = processor();
        let mut restored = processor();
        let mut w = ChangelogWriter::new();
        let heap_before = dhat::HeapStats::get().curr_bytes;
        let started = Instant::now();
        for partition in 0..PARTITIONS as i32 {
            let mut r = Restorer::new(partition, fresh.fresh_partition());
            for rec in log.iter().filter(|r| r.partition == partition) {
                r.apply(&rec.key, rec.value.as_deref()).expect("applies");
            }
            r.finish(&mut restored, &mut w);
        }
        let heap = dhat::HeapStats::get()
            .curr_bytes
            .saturating_sub(heap_before);
        println!(
            "{mode}: restore of {} records in {:.3} s; restored state {:.1} MiB live heap \
             ({} dedup entries, {} open windows, {} alert patients)",
            log.len(),
            started.elapsed().as_secs_f64(),
            heap as f64 / (1 << 20) as f64,
            restored.dedup_entries(),
            restored.open_windows(),
            restored.alert_patients(),
        );
        drop(restored);
        // The live heap by store: each restored alone (with the meta record).
        for (name, tags) in [
            ("dedup", &[1_u8, 10][..]),
            ("hrv (patients + open windows)", &[1, 3, 9][..]),
            ("alerts", &[1, 5, 7, 8, 11][..]),
        ] {
            let before = dhat::HeapStats::get().curr_bytes;
            let mut alone = processor();
            let mut w = ChangelogWriter::new();
            for partition in 0..PARTITIONS as i32 {
                let mut r = Restorer::new(partition, fresh.fresh_partition());
                for rec in log
                    .iter()
                    .filter(|r| r.partition == partition && tags.contains(&r.key[0]))
                {
                    r.apply(&rec.key, rec.value.as_deref()).expect("applies");
                }
                r.finish(&mut alone, &mut w);
            }
            let heap = dhat::HeapStats::get().curr_bytes.saturating_sub(before);
            println!(
                "  {name}: {:.1} MiB live heap",
                heap as f64 / (1 << 20) as f64
            );
        }
    }
}
