#!/usr/bin/env python3
"""vitalstream's core path written as a Quix Streams application: the peer of the backlog benchmark.

What a Python team would write with Quix Streams to do what vitalstream does
on its hot path (DESIGN.md §3, §4), with the library's own building blocks:

  * raw readings read as bytes (Confluent framing: byte 0 = 0, 4-byte
    schema id, Avro datum) and decoded with fastavro against
    schemas/raw_reading.avsc; undecodable records, wrong schema ids and a
    Kafka key that differs from the reading's patient_id go to the DLQ;
  * the plausibility ranges of src/process/ranges.rs (defaults): weight,
    systolic/diastolic (and diastolic below systolic), SpO2, temperature and
    "no plausible RR interval" reject (`out_of_range`); measured_at, or the
    end of an RR recording, more than 5 min ahead is `future_timestamp`;
    implausible secondary values (impedance, cuff pulse, ECG rate, some RR
    intervals, pauses) are quality flags;
  * patient profiles from `vitals.patients` joined with `join_asof` (the
    profile in force at the reading's timestamp, kept in Quix state); no
    profile is `unknown_patient`;
  * dedup by reading_id per patient in Quix state (RocksDB, changelogged to
    its changelog topic, restored on assignment);
  * enrichment: quality flags (attribution, delayed delivery, dropped
    secondary values, equation validity, height, segmental consistency),
    LOINC code, BP category (ACC/AHA 2017 with hypotension), BMI and body
    composition (Kyle 2001 FFM, fat mass and ratio, Janssen 2000 skeletal
    muscle, total body water, Katch–McArdle BMR) in exact decimals rounded
    half away from zero, as vitalstream does;
  * output: EnrichedReading in Confluent framing (schema id 3) to its own
    enriched topic; rejects to its own DLQ topic with the original key and
    bytes and the headers reason, detail, source_topic, source_partition,
    source_offset; duplicates dropped and counted.

Not done (vitalstream does them): HRV windows, clinician alerts, erasure
(tombstoned patients), the dedup horizon and `too_old`, bounded dedup
memory, the invalid-ratio guard, schema registry lookups.

The processing guarantee is Quix's `processing_guarantee`
(`at-least-once` or `exactly-once`); everything else is the library's
defaults except `auto_offset_reset=earliest` (a backlog) and a short
consumer session timeout (tansu's group join, DESIGN.md §8).

With --expect N the application stops once it has processed N raw
readings and prints one JSON line of timings (CLOCK_MONOTONIC seconds,
comparable with the benchmark's time.monotonic()) and counts:
first_raw (first raw reading decoded), processed (the N-th processed),
committed (the final checkpoint committed after stopping), and its
peak RSS.
"""

import argparse
import datetime
import json
import os
import resource
import struct
import sys
import time
from decimal import ROUND_HALF_UP, Decimal
from io import BytesIO

import fastavro
from quixstreams import Application, message_context
from quixstreams.models import Deserializer, Serializer
from quixstreams.models.topics import TopicConfig

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCHEMAS = os.path.join(ROOT, "schemas")

# Schema ids of the default [schemas] config (src/codec/record_codec.rs).
RAW_READING_ID = 1
PATIENT_PROFILE_ID = 2
ENRICHED_READING_ID = 3

# [validation] defaults (src/process/ranges.rs, DESIGN.md §3).
MAX_CLOCK_SKEW_MS = 5 * 60 * 1000
DELAYED_DELIVERY_MS = 60 * 60 * 1000
MAX_RR_INTERVALS = 2048
PAUSE_RR_MS = 3000
RANGES = {
    "weight_kg": (Decimal(2), Decimal(400)),
    "resistance_ohm": (Decimal(150), Decimal(1200)),
    "reactance_ohm": (Decimal(1), Decimal(200)),
    "rr_interval_ms": (200, 3000),
    "height_cm": (Decimal(50), Decimal(250)),
    "systolic_mmhg": (50, 300),
    "diastolic_mmhg": (20, 200),
    "heart_rate_bpm": (20, 300),
    "spo2_pct": (Decimal(50), Decimal(100)),
    "temperature_c": (Decimal(30), Decimal(45)),
}
KYLE_AGE_YEARS = (22, 94)
KYLE_BMI = (Decimal("17"), Decimal("33.8"))
SEGMENT_TOLERANCE = Decimal("0.25")
LOINC = {
    "BodyScan": "29463-7",
    "HeartRhythm": "8867-4",
    "EcgResult": "8867-4",
    "BloodPressure": "85354-9",
    "SpO2": "59408-5",
    "Temperature": "8310-5",
}
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
EPOCH_DATE = datetime.date(1970, 1, 1)


def load_schemas():
    named = {}
    raw = fastavro.parse_schema(json.load(open(os.path.join(SCHEMAS, "raw_reading.avsc"))), named)
    profile = fastavro.parse_schema(json.load(open(os.path.join(SCHEMAS, "patient_profile.avsc"))), named)
    enriched = fastavro.parse_schema(json.load(open(os.path.join(SCHEMAS, "enriched_reading.avsc"))), named)
    return raw, profile, enriched


RAW_SCHEMA, PROFILE_SCHEMA, ENRICHED_SCHEMA = load_schemas()


class Rejected(Exception):
    """A reading for the DLQ: reason (DESIGN.md §3) and detail."""

    def __init__(self, reason, detail):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def unframe(payload, schema_id):
    """The Avro datum of a Confluent-framed payload written with `schema_id`."""
    if payload is None:
        raise Rejected("malformed", "record has no value")
    if len(payload) < 5 or payload[0] != 0:
        raise Rejected("malformed", "not in Confluent framing (magic byte 0, 4-byte schema id)")
    (found,) = struct.unpack_from(">I", payload, 1)
    if found != schema_id:
        raise Rejected("unknown_schema", f"schema id {found} is not the RawReading id {schema_id}")
    return BytesIO(memoryview(payload)[5:])


def millis(t):
    """Milliseconds since the epoch of an aware datetime (fastavro's
    timestamp-millis), exactly."""
    return (t - EPOCH) // datetime.timedelta(milliseconds=1)


class ProfileDeserializer(Deserializer):
    """PatientProfile in Confluent framing, reduced to what enrichment needs
    in JSON-friendly types (Quix keeps joined values in state as JSON)."""

    def __call__(self, value, ctx):
        try:
            p = fastavro.schemaless_reader(unframe(value, PATIENT_PROFILE_ID), PROFILE_SCHEMA)
        except (Rejected, EOFError, ValueError, IndexError, UnicodeDecodeError):
            return None
        return {
            "birth_date_days": (p["birth_date"] - EPOCH_DATE).days,
            "sex": p["sex"],
            "height_cm": str(p["height_cm"]),
        }


class EnrichedSerializer(Serializer):
    """EnrichedReading in Confluent framing."""

    header = b"\x00" + struct.pack(">I", ENRICHED_READING_ID)

    def __call__(self, value, ctx):
        out = BytesIO()
        out.write(self.header)
        fastavro.schemaless_writer(out, ENRICHED_SCHEMA, value)
        return out.getvalue()


def decode(payload, key):
    """The reading, or a rejection for the DLQ."""
    try:
        reading = fastavro.schemaless_reader(unframe(payload, RAW_READING_ID), RAW_SCHEMA,
                                             return_record_name=True)
    except Rejected:
        raise
    except Exception as e:  # noqa: BLE001 — whatever fastavro raises on bad bytes: never crash on input
        raise Rejected("malformed", f"undecodable RawReading: {type(e).__name__}: {e}") from None
    if key is None or key != reading["patient_id"].encode():
        raise Rejected("key_mismatch", "Kafka key differs from the reading's patient_id")
    return reading


def in_range(name, value):
    lo, hi = RANGES[name]
    return lo <= value <= hi


def check(name, value):
    if not in_range(name, value):
        lo, hi = RANGES[name]
        raise Rejected("out_of_range", f"{name}={value} outside {lo}..={hi}")


def not_after(t_ms, what, now_ms):
    if t_ms > now_ms + MAX_CLOCK_SKEW_MS:
        raise Rejected("future_timestamp",
                       f"{what} is {t_ms - now_ms} ms ahead of the processor clock "
                       f"(allowed skew {MAX_CLOCK_SKEW_MS} ms)")


def validate(reading, measured_ms, now_ms):
    """Quality flags of dropped secondary values; raises Rejected for a primary one."""
    not_after(measured_ms, "measured_at", now_ms)
    kind, m = reading["measurement"]
    kind = kind.rsplit(".", 1)[-1]
    flags = []
    if kind == "BodyScan":
        check("weight_kg", m["weight_kg"])
        r_max, x_max = RANGES["resistance_ohm"][1], RANGES["reactance_ohm"][1]
        if (not in_range("resistance_ohm", m["resistance_ohm"])
                or not in_range("reactance_ohm", m["reactance_ohm"])
                or any(not (0 < s["resistance_ohm"] <= r_max and 0 < s["reactance_ohm"] <= x_max)
                       for s in m["segments"] or ())):
            flags.append("impedance_implausible")
    elif kind == "HeartRhythm":
        rr = m["rr_intervals_ms"]
        if not 1 <= len(rr) <= MAX_RR_INTERVALS:
            raise Rejected("out_of_range", f"rr_intervals_ms has {len(rr)} values, allowed 1..={MAX_RR_INTERVALS}")
        lo, hi = RANGES["rr_interval_ms"]
        plausible = sum(1 for v in rr if lo <= v <= hi)
        if plausible == 0:
            raise Rejected("out_of_range", f"rr_intervals_ms: none of the {len(rr)} values within {lo}..={hi}")
        if plausible < len(rr):
            flags.append("rr_intervals_implausible")
        if any(v >= PAUSE_RR_MS for v in rr):
            flags.append("pause_detected")
        not_after(measured_ms + sum(v for v in rr if v > 0), "measured_at + sum(rr_intervals_ms)", now_ms)
    elif kind == "BloodPressure":
        check("systolic_mmhg", m["systolic_mmhg"])
        check("diastolic_mmhg", m["diastolic_mmhg"])
        if m["diastolic_mmhg"] >= m["systolic_mmhg"]:
            raise Rejected("out_of_range", f"diastolic_mmhg={m['diastolic_mmhg']} is not below "
                                           f"systolic_mmhg={m['systolic_mmhg']}")
        if m["pulse_bpm"] is not None and not in_range("heart_rate_bpm", m["pulse_bpm"]):
            flags.append("pulse_implausible")
    elif kind == "SpO2":
        check("spo2_pct", m["spo2_pct"])
    elif kind == "Temperature":
        check("temperature_c", m["temperature_c"])
    elif kind == "EcgResult":
        if not in_range("heart_rate_bpm", m["heart_rate_bpm"]):
            flags.append("heart_rate_implausible")
    return kind, m, flags


def bp_category(sys_mmhg, dia_mmhg):
    order = ["NORMAL", "ELEVATED", "STAGE_1", "STAGE_2", "CRISIS"]
    s = 4 if sys_mmhg > 180 else 3 if sys_mmhg >= 140 else 2 if sys_mmhg >= 130 else 1 if sys_mmhg >= 120 else 0
    d = 4 if dia_mmhg > 120 else 3 if dia_mmhg >= 90 else 2 if dia_mmhg >= 80 else 0
    ladder = max(s, d)
    if ladder == 0 and (sys_mmhg < 90 or dia_mmhg < 60):
        return "HYPOTENSION"
    return order[ladder]


def at_scale(v, dp):
    return v.quantize(Decimal(1).scaleb(-dp), rounding=ROUND_HALF_UP)


def age_years(birth_days, at_ms):
    born = EPOCH_DATE + datetime.timedelta(days=birth_days)
    at = EPOCH_DATE + datetime.timedelta(days=at_ms // 86_400_000)
    if at < born:
        return None
    return at.year - born.year - ((at.month, at.day) < (born.month, born.day))


def segments_consistent(scan):
    whole = scan["resistance_ohm"]
    if whole <= 0:
        return False
    r = {}
    for seg in scan["segments"]:
        if seg["segment"] in r or seg["resistance_ohm"] <= 0:
            return False
        r[seg["segment"]] = seg["resistance_ohm"]
    torso = r.get("TORSO")
    for arm, leg in (("LEFT_ARM", "LEFT_LEG"), ("RIGHT_ARM", "RIGHT_LEG")):
        if arm in r and leg in r and torso is not None:
            if abs(r[arm] + torso + r[leg] - whole) > SEGMENT_TOLERANCE * whole:
                return False
    return True


def body_composition(scan, height, sex, age, flags):
    """Kyle 2001 / Janssen 2000 / Katch–McArdle (DESIGN.md §4), or None."""
    if sex == "UNSPECIFIED":
        return None
    s = Decimal(1 if sex == "MALE" else 0)
    w, r, xc = scan["weight_kg"], scan["resistance_ohm"], scan["reactance_ohm"]
    if height <= 0 or w <= 0 or r <= 0 or xc < 0:
        return None
    ht_m = height / 100
    bmi = w / (ht_m * ht_m)
    ht2_r = height * height / r
    ffm = Decimal("-4.104") + Decimal("0.518") * ht2_r + Decimal("0.231") * w + Decimal("0.130") * xc \
        + Decimal("4.229") * s
    if ffm <= 0:
        return None
    fat = w - ffm
    if fat < 0:
        return None
    smm = Decimal("0.401") * ht2_r + Decimal("3.825") * s - Decimal("0.071") * age + Decimal("5.102")
    if smm <= 0:
        return None
    comp = {
        "bmi": at_scale(bmi, 3),
        "fat_free_mass_kg": at_scale(ffm, 3),
        "fat_mass_kg": at_scale(fat, 3),
        "fat_ratio_pct": at_scale(fat / w * 100, 2),
        "skeletal_muscle_mass_kg": at_scale(smm, 3),
        "total_body_water_kg": at_scale(Decimal("0.73") * ffm, 3),
        "bmr_kcal": at_scale(370 + Decimal("21.6") * ffm, 1),
    }
    if not KYLE_AGE_YEARS[0] <= age <= KYLE_AGE_YEARS[1]:
        flags.append("age_outside_equation_validity")
    if not KYLE_BMI[0] <= comp["bmi"] <= KYLE_BMI[1]:
        flags.append("bmi_outside_equation_validity")
    return comp


def enrich(reading, kind, m, checked_flags, profile, measured_ms, now_ms):
    flags = []
    if reading["attribution"] == "AMBIGUOUS":
        flags.append("ambiguous_attribution")
    elif reading["attribution"] == "MANUAL":
        flags.append("manual_entry")
    if millis(reading["received_at"]) - measured_ms > DELAYED_DELIVERY_MS:
        flags.append("delayed_delivery")
    flags.extend(checked_flags)
    bp = body = bmi = None
    if kind == "BloodPressure":
        bp = bp_category(m["systolic_mmhg"], m["diastolic_mmhg"])
    elif kind == "BodyScan":
        height = Decimal(profile["height_cm"])
        if in_range("height_cm", height):
            bmi = at_scale(m["weight_kg"] / ((height / 100) ** 2), 3)
            if "impedance_implausible" in checked_flags:
                flags.append("body_composition_unavailable")
            else:
                if m["segments"] and not segments_consistent(m):
                    flags.append("segmental_inconsistent")
                age = age_years(profile["birth_date_days"], measured_ms)
                body = None if age is None else body_composition(m, height, profile["sex"], age, flags)
                if body is None:
                    flags.append("body_composition_unavailable")
        else:
            flags.extend(["height_implausible", "body_composition_unavailable"])
    ctx = message_context()
    return {
        "reading": reading,
        "quality_flags": flags,
        "loinc_code": LOINC[kind],
        "bp_category": bp,
        "body_composition": body,
        "provenance": {"topic": ctx.topic, "partition": ctx.partition, "offset": ctx.offset},
        "processed_at": now_ms,
        "bmi": bmi,
    }


class Peer:
    """The processing steps and the run's tallies."""

    def __init__(self, expect):
        self.expect = expect
        self.first_raw = None
        self.processed_at = None
        self.raw_processed = 0
        self.counts = {"enriched": 0, "duplicate": 0}
        self.app = None

    def decode_step(self, value, key, timestamp, headers):
        """Raw bytes → {raw, reading | reason/detail} (before the profile join)."""
        if self.first_raw is None:
            self.first_raw = time.monotonic()
        try:
            return {"raw": value, "reading": decode(value, key)}
        except Rejected as r:
            return {"raw": value, "reason": r.reason, "detail": r.detail}

    @staticmethod
    def merge(left, profile):
        return {**left, "profile": profile}

    def route(self, value, state):
        """Validation, profile, dedup and enrichment; sets `enriched` or
        `reason`, or neither for a duplicate."""
        if "reason" in value:
            return value
        reading = value.pop("reading")
        now_ms = int(time.time() * 1000)
        measured_ms = millis(reading["measured_at"])
        try:
            kind, m, flags = validate(reading, measured_ms, now_ms)
            if value["profile"] is None:
                raise Rejected("unknown_patient", "no profile for this patient on the patients topic")
        except Rejected as r:
            value.update(reason=r.reason, detail=r.detail)
            return value
        if state.exists(reading["reading_id"]):
            self.counts["duplicate"] += 1
            return value
        state.set(reading["reading_id"], measured_ms)
        value["enriched"] = enrich(reading, kind, m, flags, value["profile"], measured_ms, now_ms)
        self.counts["enriched"] += 1
        return value

    def count_dlq(self, value):
        key = "dlq_" + value["reason"]
        self.counts[key] = self.counts.get(key, 0) + 1

    @staticmethod
    def dlq_headers(value, key, timestamp, headers):
        ctx = message_context()
        return [
            ("reason", value["reason"].encode()),
            ("detail", value["detail"].encode()),
            ("source_topic", ctx.topic.encode()),
            ("source_partition", str(ctx.partition).encode()),
            ("source_offset", str(ctx.offset).encode()),
        ]

    def on_processed(self, topic, partition, offset):
        if topic != self.raw_topic:
            return
        self.raw_processed += 1
        if self.expect and self.raw_processed >= self.expect and self.processed_at is None:
            self.processed_at = time.monotonic()
            self.app.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--group", default="quix-peer")
    ap.add_argument("--guarantee", choices=("at-least-once", "exactly-once"), default="at-least-once")
    ap.add_argument("--raw-topic", default="vitals.readings.raw")
    ap.add_argument("--patients-topic", default="vitals.patients")
    ap.add_argument("--enriched-topic", default="quix-peer.enriched")
    ap.add_argument("--dlq-topic", default="quix-peer.dlq")
    ap.add_argument("--partitions", type=int, default=None,
                    help="partitions of the output topics it creates (default: Quix's)")
    ap.add_argument("--state-dir", default="state")
    ap.add_argument("--expect", type=int, default=0,
                    help="stop after processing this many raw readings and print timings")
    args = ap.parse_args()

    peer = Peer(args.expect)
    peer.raw_topic = args.raw_topic
    app = Application(
        broker_address=args.brokers,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        processing_guarantee=args.guarantee,
        state_dir=args.state_dir,
        # tansu joins a group in ~23 s with the default session timeout (DESIGN.md §8).
        consumer_extra_config={"session.timeout.ms": 6000},
        on_message_processed=peer.on_processed,
        loglevel="WARNING",
    )
    peer.app = app
    out_config = TopicConfig(num_partitions=args.partitions, replication_factor=1) if args.partitions else None
    raw = app.topic(args.raw_topic, key_deserializer="bytes", value_deserializer="bytes")
    patients = app.topic(args.patients_topic, key_deserializer="bytes", value_deserializer=ProfileDeserializer())
    enriched = app.topic(args.enriched_topic, key_serializer="bytes", value_serializer=EnrichedSerializer(),
                         config=out_config)
    dlq = app.topic(args.dlq_topic, key_serializer="bytes", value_serializer="bytes", config=out_config)

    readings = app.dataframe(raw).apply(peer.decode_step, metadata=True)
    profiles = app.dataframe(patients)
    routed = readings.join_asof(profiles, how="left", on_merge=peer.merge).apply(peer.route, stateful=True)

    rejected = routed.filter(lambda v: "reason" in v)
    rejected.update(peer.count_dlq)
    rejected.set_headers(peer.dlq_headers).apply(lambda v: v["raw"]).to_topic(dlq)
    routed.filter(lambda v: "enriched" in v).apply(lambda v: v["enriched"]).to_topic(enriched)

    app.run()
    committed = time.monotonic()
    if args.expect:
        print(json.dumps({
            "first_raw": peer.first_raw,
            "processed": peer.processed_at,
            "committed": committed,
            "raw_processed": peer.raw_processed,
            # KiB on Linux: the whole process, every thread.
            "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            **peer.counts,
        }), flush=True)
    if args.expect and peer.raw_processed < args.expect:
        sys.exit(f"stopped after {peer.raw_processed} of {args.expect} readings")


if __name__ == "__main__":
    main()
