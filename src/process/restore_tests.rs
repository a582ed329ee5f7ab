//! A processor restored from its own changelog behaves exactly like the one
//! that wrote it: same dispositions, windows and alerts from then on.

use std::sync::Arc;

use xxhash_rust::xxh3::xxh3_64;

use super::*;
use crate::codec::{Codec, SchemaIds};
use crate::config::ValidationConfig;
use crate::gateway::{Gateway, GatewayConfig, SimRecord};
use crate::model::{ClinicianAlert, HrvWindow};
use crate::state::StateRecord;

const NOW: i64 = 1_790_000_000_000;
const BATCH: usize = 25;

fn setup() -> (Arc<Codec>, Arc<ProfileTable>, Vec<SimRecord>) {
    let codec = Arc::new(Codec::new(SchemaIds::default()).expect("codec"));
    let mut gateway = Gateway::new(
        Codec::new(SchemaIds::default()).expect("codec"),
        GatewayConfig {
            patients: 12,
            scenario_every: 4,
            rr_history_ms: 40 * 60 * 1000,
            ..GatewayConfig::default()
        },
    );
    let table = ProfileTable::new();
    for (_, value) in gateway.profiles().expect("profiles") {
        table.upsert(codec.decode_profile(&value).expect("profile"));
    }
    let records = (0..1_200)
        .map(|i| gateway.next_record(NOW + i * 50).expect("record"))
        .collect();
    (codec, Arc::new(table), records)
}

fn processor(codec: &Arc<Codec>, table: &Arc<ProfileTable>) -> Processor {
    Processor::new(
        codec.clone(),
        ValidationConfig::default(),
        HrvConfig::default(),
        AlertsConfig::default(),
        table.clone(),
    )
    .expect("processor")
}

type Outputs = (
    Vec<Disposition<'static>>,
    Vec<HrvWindow>,
    Vec<ClinicianAlert>,
);

/// Processes `records` (numbered from `first`) in batches of [`BATCH`],
/// appending the changelog of each batch to `log`.
fn run(
    p: &mut Processor,
    records: &[SimRecord],
    first: usize,
    log: &mut Vec<StateRecord>,
) -> Outputs {
    let mut out: Outputs = Default::default();
    for (i, rec) in records.iter().enumerate() {
        let offset = first + i;
        let record = InputRecord {
            topic: "raw",
            partition: (xxh3_64(rec.key.as_bytes()) % 2) as i32,
            offset: offset as i64,
            key: Some(rec.key.as_bytes()),
            payload: Some(&rec.payload),
        };
        let now = NOW + offset as i64 * 50;
        out.0.push(p.process(&record, now).into_owned());
        if (offset + 1).is_multiple_of(BATCH) {
            out.1.extend(p.take_closed_windows(now));
            out.2.extend(p.take_alerts(now));
            log.extend(p.take_changelog().expect("changelog"));
        }
    }
    out
}

#[test]
fn a_restored_processor_continues_exactly_like_the_original() {
    let (codec, table, records) = setup();
    for cut in [BATCH * 4, BATCH * 20, BATCH * 36] {
        let mut original = processor(&codec, &table);
        let mut log = Vec::new();
        let before = run(&mut original, &records[..cut], 0, &mut log);
        assert!(!log.is_empty());
        let mut restored = processor(&codec, &table);
        for partition in 0..2 {
            let entries = log
                .iter()
                .filter(|r| r.partition == partition)
                .map(|r| (r.key.clone(), r.value.clone()));
            let summary = restored
                .restore_partition(partition, entries)
                .expect("restore");
            assert!(summary.keys > 0, "partition {partition} had state");
        }
        assert_eq!(restored.dedup_entries(), original.dedup_entries());
        assert_eq!(restored.open_windows(), original.open_windows());
        assert_eq!(restored.alert_patients(), original.alert_patients());
        let mut ignored = Vec::new();
        let a = run(&mut original, &records[cut..], cut, &mut ignored);
        let b = run(&mut restored, &records[cut..], cut, &mut Vec::new());
        assert_eq!(a.0, b.0, "dispositions after a cut at {cut}");
        assert_eq!(a.1, b.1, "HRV windows after a cut at {cut}");
        assert_eq!(a.2, b.2, "alerts after a cut at {cut}");
        // The stream exercises what the state holds.
        let duplicates = a.0.iter().filter(|d| **d == Disposition::Duplicate).count();
        assert!(duplicates > 0 && !a.1.is_empty(), "cut at {cut}");
        assert!(!before.2.is_empty() || !a.2.is_empty(), "alerts raised");
    }
}

#[test]
fn an_erasure_leaves_only_tombstones_for_the_patient() {
    let (codec, table, records) = setup();
    let mut p = processor(&codec, &table);
    let mut log = Vec::new();
    run(&mut p, &records[..600], 0, &mut log);
    let patient = "scenario-hf-gain";
    table.erase(patient);
    p.apply_erasures();
    let tail = p.take_changelog().expect("changelog");
    let key = crate::state::encode_key(
        (xxh3_64(patient.as_bytes()) % 2) as i32,
        &crate::state::StateKey::patient(patient),
    );
    assert!(
        tail.iter().any(|r| r.key == key && r.value.is_none()),
        "the patient's snapshot is deleted"
    );
    let dedup_tombstones = tail
        .iter()
        .filter(|r| r.value.is_none() && r.key.windows(6).any(|w| w == b"dedup/"))
        .count();
    assert!(
        dedup_tombstones >= 3,
        "the patient's reading ids are deleted"
    );
    assert!(
        tail.iter().all(|r| r
            .value
            .as_ref()
            .is_none_or(|v| { !String::from_utf8_lossy(v).contains(patient) })),
        "nothing written after the erasure names the patient"
    );
}

/// An erasure the changelog does not reflect (the partition was held
/// elsewhere, or the purge's transaction was aborted) is applied when the
/// partition is restored: nothing of the patient is held, and the next
/// changelog write tombstones every key the patient had.
#[test]
fn a_restore_purges_an_erasure_the_changelog_predates() {
    let (codec, table, records) = setup();
    let patient = "scenario-hf-gain";
    let partition = (xxh3_64(patient.as_bytes()) % 2) as i32;
    let mut writer = processor(&codec, &table);
    let mut log = Vec::new();
    run(&mut writer, &records[..600], 0, &mut log);
    table.erase(patient);
    let entries = |log: &[StateRecord]| -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        log.iter()
            .filter(|r| r.partition == partition)
            .map(|r| (r.key.clone(), r.value.clone()))
            .collect()
    };
    let mut owner = processor(&codec, &table);
    owner
        .restore_partition(partition, entries(&log))
        .expect("restore");
    assert!(owner.apply_erasures() >= 3, "purged on restore, counted");
    let tail = owner.take_changelog().expect("changelog");
    let key = crate::state::encode_key(partition, &crate::state::StateKey::patient(patient));
    assert!(
        tail.iter().any(|r| r.key == key && r.value.is_none()),
        "the patient's snapshot is deleted"
    );
    let dedup_tombstones = tail
        .iter()
        .filter(|r| r.value.is_none() && r.key.windows(6).any(|w| w == b"dedup/"))
        .count();
    assert!(
        dedup_tombstones >= 3,
        "the patient's reading ids are deleted"
    );
    // Restored again from the changelog with the tombstones: nothing is
    // left to purge, and the erasure is applied once to held partitions.
    log.extend(tail);
    let mut next = processor(&codec, &table);
    next.restore_partition(partition, entries(&log))
        .expect("restore");
    assert_eq!(next.apply_erasures(), 0);
    assert!(next.take_changelog().expect("changelog").is_empty());
}
