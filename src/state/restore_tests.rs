//! A processor restored from its own changelog behaves exactly like the one
//! that wrote it: same dispositions, windows and alerts from then on.

use std::sync::Arc;

use xxhash_rust::xxh3::xxh3_64;

use super::*;
use crate::codec::{Codec, SchemaIds};
use crate::config::ValidationConfig;
use crate::gateway::{Gateway, GatewayConfig, SimRecord};
use crate::model::{ClinicianAlert, HrvWindow};
use crate::process::{
    AlertsConfig, Disposition, HrvConfig, InputRecord, Processor, ProfileTable, WindowChunk,
};
use crate::state::value::decode;

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
    writer: &mut ChangelogWriter,
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
            let mut buffer = ChangelogBuffer::new();
            writer.take(p, &mut buffer).expect("changelog");
            log.extend(buffer.drain());
        }
    }
    out
}

/// A processor with `log`'s state for partitions 0 and 1, and its writer.
fn restore_all(
    codec: &Arc<Codec>,
    table: &Arc<ProfileTable>,
    log: &[StateRecord],
) -> (Processor, ChangelogWriter) {
    let mut p = processor(codec, table);
    let mut writer = ChangelogWriter::new();
    for partition in 0..2 {
        let mut restorer = Restorer::new(partition, p.fresh_partition());
        for r in log.iter().filter(|r| r.partition == partition) {
            restorer.apply(&r.key, r.value.as_deref()).expect("applies");
        }
        let summary = restorer.finish(&mut p, &mut writer);
        assert!(summary.dedup_entries > 0, "partition {partition} had state");
        assert!(
            summary.next_offset.is_some(),
            "partition {partition}: marker"
        );
    }
    (p, writer)
}

#[test]
fn a_restored_processor_continues_exactly_like_the_original() {
    let (codec, table, records) = setup();
    for cut in [BATCH * 4, BATCH * 20, BATCH * 36] {
        let mut original = processor(&codec, &table);
        let mut writer = ChangelogWriter::new();
        let mut log = Vec::new();
        let before = run(&mut original, &records[..cut], 0, &mut writer, &mut log);
        assert!(!log.is_empty());
        let (mut restored, mut restored_writer) = restore_all(&codec, &table, &log);
        assert_eq!(restored.dedup_entries(), original.dedup_entries());
        assert_eq!(restored.open_windows(), original.open_windows());
        assert_eq!(restored.alert_patients(), original.alert_patients());
        let mut tail_a = Vec::new();
        let mut tail_b = Vec::new();
        let a = run(
            &mut original,
            &records[cut..],
            cut,
            &mut writer,
            &mut tail_a,
        );
        let b = run(
            &mut restored,
            &records[cut..],
            cut,
            &mut restored_writer,
            &mut tail_b,
        );
        assert_eq!(a.0, b.0, "dispositions after a cut at {cut}");
        assert_eq!(a.1, b.1, "HRV windows after a cut at {cut}");
        assert_eq!(a.2, b.2, "alerts after a cut at {cut}");
        // The restored writer knows what the changelog holds: it writes
        // what the original writes, closed windows' tombstones included.
        assert_eq!(tail_a, tail_b, "changelog after a cut at {cut}");
        // The stream exercises what the state holds.
        let duplicates = a.0.iter().filter(|d| **d == Disposition::Duplicate).count();
        assert!(duplicates > 0 && !a.1.is_empty(), "cut at {cut}");
        assert!(!before.2.is_empty() || !a.2.is_empty(), "alerts raised");
        // A second restore from the whole log gives the same state again.
        log.extend(tail_a);
        let (again, _) = restore_all(&codec, &table, &log);
        assert_eq!(again.dedup_entries(), original.dedup_entries());
        assert_eq!(again.open_windows(), original.open_windows());
        assert_eq!(again.alert_patients(), original.alert_patients());
    }
}

#[test]
fn an_erasure_leaves_only_tombstones_for_the_patient() {
    let (codec, table, records) = setup();
    let mut p = processor(&codec, &table);
    let mut writer = ChangelogWriter::new();
    let mut log = Vec::new();
    run(&mut p, &records[..600], 0, &mut writer, &mut log);
    let patient = "scenario-hf-gain";
    let partition = (xxh3_64(patient.as_bytes()) % 2) as i32;
    let h = patient_hash(patient);
    let patient_keys = |log: &[StateRecord]| -> std::collections::BTreeSet<Vec<u8>> {
        log.iter()
            .filter(|r| r.partition == partition)
            .filter(|r| match StateKey::decode(&r.key) {
                Ok((_, k)) => k.patient() == Some(h),
                _ => false,
            })
            .map(|r| r.key.clone())
            .collect()
    };
    let before = patient_keys(&log);
    let has = |want: fn(&StateKey) -> bool| {
        before
            .iter()
            .any(|k| StateKey::decode(k).is_ok_and(|(_, k)| want(&k)))
    };
    assert!(
        has(|k| matches!(k, StateKey::Alerts(_))) && has(|k| matches!(k, StateKey::AlertSlot(..))),
        "the patient has alert state: {} keys",
        before.len()
    );
    table.erase(patient);
    p.apply_erasures();
    let mut buffer = ChangelogBuffer::new();
    writer.take(&mut p, &mut buffer).expect("changelog");
    let tail = buffer.drain();
    // Every key the patient ever had that is still live gets a tombstone.
    let mut live = std::collections::BTreeMap::new();
    for r in &log {
        live.insert(r.key.clone(), r.value.is_some());
    }
    for key in &before {
        if live[key] {
            assert!(
                tail.iter().any(|r| &r.key == key && r.value.is_none()),
                "a live key of the patient is deleted"
            );
        }
    }
    assert!(
        tail.iter().all(|r| r
            .value
            .as_ref()
            .is_none_or(|v| !v.windows(patient.len()).any(|w| w == patient.as_bytes()))),
        "nothing written after the erasure names the patient"
    );
    // Restored from the whole log, nothing of the patient is left.
    log.extend(tail);
    let (again, _) = restore_all(&codec, &table, &log);
    assert_eq!(again.dedup_entries(), p.dedup_entries());
    assert_eq!(again.open_windows(), p.open_windows());
    assert_eq!(again.alert_patients(), p.alert_patients());
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
    let mut p = processor(&codec, &table);
    let mut writer = ChangelogWriter::new();
    let mut log = Vec::new();
    run(&mut p, &records[..600], 0, &mut writer, &mut log);
    let h = patient_hash(patient);
    assert!(
        log.iter().any(|r| matches!(
            StateKey::decode(&r.key),
            Ok((_, StateKey::Alerts(x) | StateKey::HrvPatient(x))) if x == h
        )),
        "the patient has state"
    );
    // Erased while this log was written elsewhere: the log predates it.
    table.erase(patient);
    let (mut owner, mut owner_writer) = restore_all(&codec, &table, &log);
    assert!(owner.apply_erasures() >= 3, "purged on restore, counted");
    let mut buffer = ChangelogBuffer::new();
    owner_writer
        .take(&mut owner, &mut buffer)
        .expect("changelog");
    let tail = buffer.drain();
    let dedup = table.hasher().hash(patient.as_bytes()).dedup_part();
    let deleted = |pred: &dyn Fn(&StateKey) -> bool| {
        tail.iter().any(|r| {
            r.partition == partition
                && r.value.is_none()
                && StateKey::decode(&r.key).is_ok_and(|(_, k)| pred(&k))
        })
    };
    assert!(
        deleted(&|k| matches!(k, StateKey::Alerts(x) if *x == h)),
        "the patient's alert record is deleted"
    );
    assert!(
        tail.iter().any(|r| r.partition == partition
            && matches!(StateKey::decode(&r.key), Ok((_, StateKey::DedupGroup(_))))),
        "the patient's reading ids are deleted from their generations"
    );
    let mut live = std::collections::BTreeMap::new();
    for r in log.iter().chain(&tail) {
        live.insert((r.partition, r.key.clone()), r.value.clone());
    }
    for ((_, key), value) in &live {
        if let (Ok((_, StateKey::DedupGroup(_))), Some(v)) = (StateKey::decode(key), value) {
            let ids = decode_dedup_group(v).expect("group");
            assert!(
                ids.iter().all(|((x, _), _)| *x != dedup),
                "no live dedup record holds the patient's ids"
            );
        }
    }
    // Restored again from the log with the tombstones: nothing is left to
    // purge.
    log.extend(tail);
    let (mut next, mut next_writer) = restore_all(&codec, &table, &log);
    assert_eq!(next.apply_erasures(), 0);
    let mut buffer = ChangelogBuffer::new();
    next_writer.take(&mut next, &mut buffer).expect("changelog");
    assert!(
        buffer.drain().iter().all(|r| r.value.is_some()),
        "no tombstone left to write"
    );
}

#[test]
fn writes_to_one_key_coalesce_until_the_buffer_is_sent() {
    let (codec, table, records) = setup();
    let mut p = processor(&codec, &table);
    let mut writer = ChangelogWriter::new();
    // One buffer over many batches (one transaction) against one per batch.
    let mut joined = ChangelogBuffer::new();
    let mut separate = 0;
    for (i, rec) in records[..400].iter().enumerate() {
        let record = InputRecord {
            topic: "raw",
            partition: 0,
            offset: i as i64,
            key: Some(rec.key.as_bytes()),
            payload: Some(&rec.payload),
        };
        let now = NOW + i as i64 * 50;
        p.process(&record, now);
        if (i + 1) % BATCH == 0 {
            p.take_closed_windows(now);
            p.take_alerts(now);
            let mut batch = ChangelogBuffer::new();
            writer.take(&mut p, &mut batch).expect("changelog");
            separate += batch.len();
            for r in batch.drain() {
                let key = StateKey::decode(&r.key).expect("key").1;
                joined.put(r.partition, key, r.value);
            }
        }
    }
    assert!(joined.coalesced() > 0);
    assert_eq!(joined.len() as u64 + joined.coalesced(), separate as u64);
    let sent = joined.drain();
    assert!(joined.is_empty());
    // One record per key, the partition's marker last and at the newest offset.
    let keys: std::collections::BTreeSet<_> = sent.iter().map(|r| r.key.clone()).collect();
    assert_eq!(keys.len(), sent.len());
    let last = sent.last().expect("records");
    assert_eq!(StateKey::decode(&last.key), Ok((0, StateKey::Meta)));
    let meta: PartitionMeta = decode(last.value.as_deref().expect("value")).expect("meta");
    assert_eq!(meta.next_offset, Some(400));
}

#[test]
fn a_restore_is_complete_only_at_the_committed_offset() {
    let (codec, table, records) = setup();
    let mut p = processor(&codec, &table);
    let mut writer = ChangelogWriter::new();
    let mut log = Vec::new();
    run(&mut p, &records[..100], 0, &mut writer, &mut log);
    let mut r = Restorer::new(0, p.fresh_partition());
    assert!(
        r.is_complete(None),
        "nothing committed: the end is complete"
    );
    assert!(!r.is_complete(Some(1)), "no marker yet");
    let mut markers = Vec::new();
    for rec in log.iter().filter(|r| r.partition == 0) {
        r.apply(&rec.key, rec.value.as_deref()).expect("applies");
        markers.extend(r.marker());
    }
    // Markers follow the batches: every BATCH records of input.
    assert!(markers.windows(2).all(|w| w[0] <= w[1]));
    // The offset after partition 0's last input record.
    let next = records[..100]
        .iter()
        .rposition(|rec| xxh3_64(rec.key.as_bytes()).is_multiple_of(2))
        .expect("records of partition 0") as i64
        + 1;
    assert_eq!(r.marker(), Some(next));
    assert!(r.is_complete(Some(next)));
    assert!(
        r.is_complete(Some(next - 20)),
        "at-least-once: state ahead of the commit"
    );
    assert!(
        !r.is_complete(Some(next + 1)),
        "short of the committed offset"
    );
}

#[test]
fn a_record_of_another_format_stops_the_restore_with_a_clear_error() {
    let (codec, table, _) = setup();
    let p = processor(&codec, &table);
    let mut r = Restorer::new(3, p.fresh_partition());
    let err = r.apply(b"3/meta", Some(b"{}")).expect_err("legacy key");
    assert!(err.to_string().contains("older vitalstream"), "{err}");
    let mut value = encode(&7_i64).expect("encodes");
    value[0] = FORMAT_VERSION + 1;
    let err = r
        .apply(&StateKey::DedupGroup(2).encode(3), Some(&value))
        .expect_err("unknown version");
    assert!(err.to_string().contains("format version"), "{err}");
    // Another partition's records are not this restore's business.
    r.apply(&StateKey::DedupGroup(2).encode(4), Some(&value))
        .expect("skipped");
}

/// The log as a compacted topic holds it: the last record of each key, at
/// its offset. `heads_last` moves every alert head record behind the rest
/// (a head rewritten by a later cool-down outlives the samples before it).
fn compacted(log: &[StateRecord], heads_last: bool) -> Vec<StateRecord> {
    let mut last = std::collections::HashMap::new();
    for (i, r) in log.iter().enumerate() {
        last.insert((r.partition, r.key.clone()), i);
    }
    let mut kept: Vec<&StateRecord> = log
        .iter()
        .enumerate()
        .filter(|(i, r)| last[&(r.partition, r.key.clone())] == *i)
        .map(|(_, r)| r)
        .collect();
    if heads_last {
        kept.sort_by_key(|r| matches!(StateKey::decode(&r.key), Ok((_, StateKey::Alerts(_)))));
    }
    kept.into_iter().cloned().collect()
}

#[test]
fn a_compacted_changelog_restores_the_same_alert_state() {
    let (codec, table, records) = setup();
    let cut = BATCH * 30;
    let mut original = processor(&codec, &table);
    let mut writer = ChangelogWriter::new();
    let mut log = Vec::new();
    run(&mut original, &records[..cut], 0, &mut writer, &mut log);
    let mut tail = Vec::new();
    let a = run(&mut original, &records[cut..], cut, &mut writer, &mut tail);
    for heads_last in [false, true] {
        let (mut restored, mut w) = restore_all(&codec, &table, &compacted(&log, heads_last));
        assert_eq!(restored.alert_patients(), processor_alert_patients(&log));
        let b = run(&mut restored, &records[cut..], cut, &mut w, &mut Vec::new());
        assert_eq!(
            a.2, b.2,
            "alerts after a compacted restore (heads last: {heads_last})"
        );
        // HRV: a head record superseded by marks on a later chunk is
        // compacted away, yet lateness and idle closes continue the same.
        assert_eq!(a.1, b.1, "HRV windows after a compacted restore");
        assert_eq!(a.0, b.0, "dispositions after a compacted restore");
    }
}

#[test]
fn a_reading_with_beats_writes_its_chunk_alone_the_chunk_carries_the_marks() {
    let (codec, table, records) = setup();
    let mut p = processor(&codec, &table);
    let mut writer = ChangelogWriter::new();
    let mut log = Vec::new();
    run(&mut p, &records[..BATCH * 20], 0, &mut writer, &mut log);
    let (mut heads, mut chunks, mut marked) = (0, 0, 0);
    for r in log.iter().filter(|r| r.value.is_some()) {
        match StateKey::decode(&r.key).expect("key").1 {
            StateKey::HrvPatient(_) => heads += 1,
            StateKey::HrvChunk(..) => {
                chunks += 1;
                let chunk: WindowChunk = decode(r.value.as_deref().expect("value")).expect("chunk");
                marked += usize::from(chunk.marks().is_some());
            }
            _ => {}
        }
    }
    assert!(
        chunks > 100,
        "the stream has watch readings with beats: {chunks}"
    );
    // Most readings only move the patient's event-time marks: their chunk
    // carries them and no head record is rewritten.
    assert!(
        marked * 2 > chunks,
        "{marked} of {chunks} chunks carry marks"
    );
    assert!(
        heads * 2 < chunks,
        "{heads} head records for {chunks} chunks"
    );
}

fn processor_alert_patients(log: &[StateRecord]) -> usize {
    compacted(log, false)
        .iter()
        .filter(|r| r.value.is_some())
        .filter(|r| matches!(StateKey::decode(&r.key), Ok((_, StateKey::Alerts(_)))))
        .count()
}

/// A patient's alert history grows with every reading, its records do not:
/// a slot record holds the samples of the patient's readings in one batch
/// (here at most 25 readings), never the whole history.
#[test]
fn alert_records_stay_small_as_history_grows() {
    let (codec, table, records) = setup();
    let mut p = processor(&codec, &table);
    let mut writer = ChangelogWriter::new();
    let mut log = Vec::new();
    run(&mut p, &records, 0, &mut writer, &mut log);
    let alert_records: Vec<&StateRecord> = log
        .iter()
        .filter(|r| {
            matches!(
                StateKey::decode(&r.key),
                Ok((_, StateKey::Alerts(_) | StateKey::AlertSlot(..)))
            )
        })
        .collect();
    assert!(alert_records.len() > 100, "{}", alert_records.len());
    let largest = alert_records
        .iter()
        .map(|r| r.key.len() + r.value.as_ref().map_or(0, Vec::len))
        .max()
        .unwrap_or(0);
    assert!(largest < 400, "largest alert record {largest} bytes");
}

#[test]
fn a_window_s_chunks_leave_the_buffer_in_chunk_order_and_meta_last() {
    // A restore starts a window over at chunk 0 and appends the others:
    // they must be sent in chunk order whatever order they were put in.
    let mut buffer = ChangelogBuffer::new();
    buffer.put(0, StateKey::Meta, Some(vec![1]));
    for seq in [2u16, 0, 3, 1] {
        buffer.put(0, StateKey::HrvChunk(7, 1_000, seq), Some(vec![2]));
    }
    buffer.put(1, StateKey::Meta, Some(vec![3]));
    buffer.put(0, StateKey::HrvPatient(7), Some(vec![4]));
    let sent: Vec<(i32, StateKey)> = buffer
        .drain()
        .iter()
        .map(|r| StateKey::decode(&r.key).expect("key"))
        .collect();
    assert_eq!(
        sent,
        vec![
            (0, StateKey::HrvPatient(7)),
            (0, StateKey::HrvChunk(7, 1_000, 0)),
            (0, StateKey::HrvChunk(7, 1_000, 1)),
            (0, StateKey::HrvChunk(7, 1_000, 2)),
            (0, StateKey::HrvChunk(7, 1_000, 3)),
            (0, StateKey::Meta),
            (1, StateKey::Meta),
        ]
    );
}
/// A watch wearer the hourly sweep forgets and whose device then syncs a
/// backlog in the same exactly_once transaction: the head's tombstone is
/// coalesced away, and the restored marks must be the new head's, not the
/// forgotten state's (else the synced beats count as late).
#[test]
fn hrv_patient_forgotten_and_back_in_one_transaction_restores_alike() {
    let (codec, table, _) = setup();
    let s = (NOW / 300_000 + 1) * 300_000; // start of window W
    let (mut a, mut wa, mut log) = (
        processor(&codec, &table),
        ChangelogWriter::new(),
        Vec::new(),
    );
    a.install_partition(0, a.fresh_partition());
    for r in [("P", "p1", s + 60_000), ("Q", "q1", s + 40 * 60_000)] {
        let mut buf = ChangelogBuffer::new(); // W closes idle: head with closed_through = end(W)
        hrv_batch(&mut a, &mut wa, &mut buf, r);
        log.extend(buf.drain());
    }
    // One exactly_once transaction, two batches: the hourly sweep forgets P
    // (head tombstone), then P's device syncs its backlog into W again (new
    // head): the two head writes coalesce, the tombstone never reaches the log.
    let mut buf = ChangelogBuffer::new();
    hrv_batch(&mut a, &mut wa, &mut buf, ("Q", "q2", s + 26 * 3_600_000));
    hrv_batch(&mut a, &mut wa, &mut buf, ("P", "p2", s + 100_000));
    log.extend(buf.drain());
    let (mut b, mut wb) = restored(&codec, &table, &log);
    let out = [(&mut a, &mut wa), (&mut b, &mut wb)].map(|(p, w)| {
        hrv_batches(
            p,
            w,
            &[("P", "p3", s + 140_000), ("Q", "q3", s + 27 * 3_600_000)],
        )
    });
    // Fails: the restored W has n_beats 30, n_late 30 (p3 late) vs 60 / 0.
    assert_eq!(out[0], out[1]);
}

/// The hourly sweep that forgets quiet watch wearers runs at the same
/// partition event time after a restart as it would have without one: a
/// restored instance that swept at once could forget a patient up to an
/// hour early, and a late upload of that patient's closed window would then
/// open it again (a second window for the same five minutes) instead of
/// counting its beats late.
#[test]
fn hrv_hourly_sweep_keeps_its_time_across_a_restore() {
    let (codec, table, _) = setup();
    let s = (NOW / 300_000 + 1) * 300_000; // start of window W
    let hour = 3_600_000;
    let (mut a, mut wa, mut log) = (
        processor(&codec, &table),
        ChangelogWriter::new(),
        Vec::new(),
    );
    a.install_partition(0, a.fresh_partition());
    // P's window W closes idle; 23.5 h later Q's reading makes the sweep run
    // (P is not quiet for 24 h yet, so kept).
    for r in [
        ("P", "p1", s + 60_000),
        ("Q", "q1", s + 40 * 60_000),
        ("Q", "q2", s + 23 * hour + 30 * 60_000),
    ] {
        let mut buf = ChangelogBuffer::new();
        hrv_batch(&mut a, &mut wa, &mut buf, r);
        log.extend(buf.drain());
    }
    let (mut b, mut wb) = restored(&codec, &table, &log);
    // 40 minutes on: no sweep is due since the last, so P is still known;
    // then P's watch uploads more beats of W late.
    let out = [(&mut a, &mut wa), (&mut b, &mut wb)].map(|(p, w)| {
        let readings = [
            ("Q", "q3", s + 24 * hour + 10 * 60_000),
            ("P", "p2", s + 120_000),
            ("Q", "q4", s + 24 * hour + 50 * 60_000),
        ];
        hrv_batches(p, w, &readings)
    });
    assert_eq!(out[0], out[1]);
}

/// One watch reading of 30 beats of 1 s as its own batch: the partition's
/// event time moves to its end, windows advance, the changelog is taken.
fn hrv_batch(
    p: &mut Processor,
    w: &mut ChangelogWriter,
    buf: &mut ChangelogBuffer,
    (patient, id, t): (&str, &str, i64),
) -> Vec<HrvWindow> {
    let (_, st) = p.partitions_mut().next().expect("partition 0");
    st.hrv.observe_event_time(t + 30_000);
    st.hrv.add_reading(patient, id, t, &[1_000; 30]);
    let closed = st.hrv.advance();
    w.take(p, buf).expect("take");
    closed
}

/// [`hrv_batch`] for each of `readings`, a batch each: the windows closed.
fn hrv_batches(
    p: &mut Processor,
    w: &mut ChangelogWriter,
    readings: &[(&str, &str, i64)],
) -> Vec<HrvWindow> {
    let mut closed = Vec::new();
    for &r in readings {
        closed.extend(hrv_batch(p, w, &mut ChangelogBuffer::new(), r));
    }
    closed
}

/// Partition 0 of a new processor restored from `log`.
fn restored(
    codec: &Arc<Codec>,
    table: &Arc<ProfileTable>,
    log: &[StateRecord],
) -> (Processor, ChangelogWriter) {
    let (mut b, mut wb) = (processor(codec, table), ChangelogWriter::new());
    let mut r = Restorer::new(0, b.fresh_partition());
    for rec in log {
        r.apply(&rec.key, rec.value.as_deref()).expect("applies");
    }
    r.finish(&mut b, &mut wb);
    (b, wb)
}
