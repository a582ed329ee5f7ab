//! Any payload, with its own key, no key or arbitrary key bytes, through the
//! hot path: framed Avro decode (the schema-specific
//! decoder, checked against apache-avro's generic reader), then the whole
//! processor (key check, validation, dedup, enrichment, HRV windows, alert
//! rules) and the enriched encoder. Nothing may panic, and whatever
//! apache-avro accepts the direct decoder must decode to the same reading.
#![no_main]

use std::sync::{Arc, LazyLock, Mutex};

use libfuzzer_sys::fuzz_target;
use vitalstream::codec::{Codec, SchemaIds};
use vitalstream::config::ValidationConfig;
use vitalstream::gateway::{Gateway, GatewayConfig};
use vitalstream::process::{
    AlertsConfig, Disposition, HrvConfig, InputRecord, Processor, ProfileTable,
};

/// Processing clock: readings of the seed corpus are measured just before.
const NOW: i64 = 1_763_900_000_000;

struct Harness {
    codec: Arc<Codec>,
    processor: Processor,
    out: Vec<u8>,
}

static HARNESS: LazyLock<Mutex<Harness>> = LazyLock::new(|| {
    let codec = Arc::new(Codec::new(SchemaIds::default()).expect("codec"));
    // The simulated gateway's patients, as the seed corpus uses them
    // (examples/fuzz_seeds.rs).
    let table = ProfileTable::new();
    let gateway = Gateway::new(
        Codec::new(SchemaIds::default()).expect("codec"),
        GatewayConfig {
            patients: 20,
            ..GatewayConfig::default()
        },
    );
    for (_, payload) in gateway.profiles().expect("profiles encode") {
        table.upsert(codec.decode_profile(&payload).expect("profile decodes"));
    }
    let processor = Processor::new(
        codec.clone(),
        ValidationConfig::default(),
        HrvConfig::default(),
        AlertsConfig::default(),
        Arc::new(table),
    )
    .expect("processor");
    Mutex::new(Harness {
        codec,
        processor,
        out: Vec::with_capacity(1024),
    })
});

fuzz_target!(|data: &[u8]| {
    let mut guard = HARNESS.lock().unwrap_or_else(|p| p.into_inner());
    let h = &mut *guard;
    let direct = h.codec.decode_raw(data);
    // The two decoders agree on every canonical encoding. apache-avro is
    // lenient elsewhere (it reads a varint cut off by the end of the input
    // as a union's first branch), the direct decoder is not.
    let generic = h.codec.decode_raw_generic(data);
    let canonical = |r: &vitalstream::model::RawReading<'_>, out: &mut Vec<u8>| {
        h.codec.encode_raw(r, out).is_ok() && out.as_slice() == data
    };
    let mut buf = Vec::new();
    match (&direct, &generic) {
        (Ok(d), Ok(g)) => assert_eq!(d, g, "the decoders disagree"),
        (Err(e), Ok(g)) => assert!(
            !canonical(g, &mut buf),
            "the direct decoder rejects a canonical encoding: {e}"
        ),
        (Ok(d), Err(e)) => assert!(
            !canonical(d, &mut buf),
            "apache-avro rejects a canonical encoding the direct decoder reads: {e}"
        ),
        (Err(_), Err(_)) => {}
    }
    // The gateway keys by patient id: most inputs get their reading's own
    // key, so they reach validation and state; the others are keyless or
    // carry arbitrary key bytes (the payload's tail, possibly not UTF-8), so
    // the key check runs on any key too. The choice comes from the length,
    // not from a byte of the input, so the seed payloads stay payloads.
    let own = direct
        .as_ref()
        .ok()
        .map(|r| r.patient_id.as_bytes().to_vec());
    let key = match data.len() % 4 {
        0 => None,
        1 => Some(data[data.len().saturating_sub(9)..].to_vec()),
        _ => own,
    };
    let offset = i64::from(data.first().copied().unwrap_or(0));
    let record = InputRecord {
        topic: "vitals.readings.raw",
        partition: i32::from(data.len() % 2 == 0),
        offset,
        key: key.as_deref(),
        payload: Some(data),
    };
    if let Disposition::Enriched(e) = h.processor.process(&record, NOW) {
        let mut out = std::mem::take(&mut h.out);
        h.codec
            .encode_enriched(&e, &mut out)
            .expect("an accepted reading encodes");
        let back = h.codec.decode_enriched(&out).expect("its encoding decodes");
        assert_eq!(back, e.into_owned(), "enriched reading round trip");
        h.out = out;
    }
    // Closed windows and alerts run their own encoders.
    let mut out = std::mem::take(&mut h.out);
    for w in h.processor.take_closed_windows(NOW) {
        h.codec
            .encode_hrv_window(&w, &mut out)
            .expect("window encodes");
    }
    for a in h.processor.take_alerts(NOW) {
        h.codec.encode_alert(&a, &mut out).expect("alert encodes");
    }
    h.out = out;
});
