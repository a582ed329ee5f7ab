"""Interoperability with the official Confluent Python client and a schema
registry, driven by tests/registry_interop.rs.

produce: writes patient profiles and raw readings with confluent_kafka's
    AvroSerializer (auto-registering the schemas, so the records carry the
    registry's ids), including one reading written with a newer version of
    RawReading (an extra field) registered under a new id.
consume: reads the enriched topic (read_committed) with AvroDeserializer,
    which fetches vitalstream's registered schema and its RawReading
    reference from the registry, and prints one JSON line per record.
"""

import argparse
import datetime
import decimal
import json
import sys
import time

from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

D = decimal.Decimal


def now_ms():
    return int(time.time() * 1000)


def reading(reading_id, patient_id, measurement):
    t = now_ms() - 1000
    return {
        "reading_id": reading_id,
        "device_id": "dev-py",
        "device_model": "python gateway",
        "device_kind": "SCALE",
        "patient_id": patient_id,
        "measured_at": t,
        "received_at": t + 500,
        "attribution": "DEVICE",
        "measurement": measurement,
    }


def produce(args):
    registry = SchemaRegistryClient({"url": args.registry})
    raw_avsc = open(f"{args.schemas}/raw_reading.avsc").read()
    profile_avsc = open(f"{args.schemas}/patient_profile.avsc").read()
    raw_v2 = json.loads(raw_avsc)
    raw_v2["fields"].append({"name": "firmware", "type": "string", "default": ""})

    conf = {"auto.register.schemas": True}
    profiles = AvroSerializer(registry, profile_avsc, conf=conf)
    readings = AvroSerializer(registry, raw_avsc, conf=conf)
    readings_v2 = AvroSerializer(registry, json.dumps(raw_v2), conf=conf)
    producer = Producer({"bootstrap.servers": args.bootstrap, "enable.idempotence": True})

    def send(topic, serializer, key, value):
        ctx = SerializationContext(topic, MessageField.VALUE)
        producer.produce(topic, key=key.encode(), value=serializer(value, ctx))

    birth = datetime.date.today() - datetime.timedelta(days=40 * 365 + 110)
    for patient in ("py-1", "py-2"):
        send(args.patients_topic, profiles, patient, {
            "patient_id": patient,
            "birth_date": birth,
            "sex": "MALE",
            "height_cm": D("180.0"),
            "rpm_enrolled": True,
            "consent_clinician_sharing": True,
            "care_team": ["team-py"],
            "threshold_overrides": [],
            "dry_weight_kg": None,
        })
    producer.flush(30)
    scan = ("io.vitalstream.BodyScan", {
        "weight_kg": D("80.125"),
        "resistance_ohm": D("450.00"),
        "reactance_ohm": D("55.00"),
        "segments": None,
    })
    bp = ("io.vitalstream.BloodPressure", {
        "systolic_mmhg": 128, "diastolic_mmhg": 78, "pulse_bpm": 66,
    })
    spo2 = ("io.vitalstream.SpO2", {"spo2_pct": D("97.5")})
    send(args.raw_topic, readings, "py-1", reading("py-r-scan", "py-1", scan))
    send(args.raw_topic, readings, "py-2", reading("py-r-bp", "py-2", bp))
    v2 = reading("py-r-v2", "py-1", spo2)
    v2["firmware"] = "fw-9"
    send(args.raw_topic, readings_v2, "py-1", v2)
    left = producer.flush(30)
    if left:
        sys.exit(f"{left} records not delivered")
    ids = {
        "raw": registry.get_latest_version(f"{args.raw_topic}-value").schema_id,
        "profile": registry.get_latest_version(f"{args.patients_topic}-value").schema_id,
    }
    print(json.dumps(ids))


def consume(args):
    registry = SchemaRegistryClient({"url": args.registry})
    # No schema given: the writer's schema is fetched by the record's id,
    # references included.
    deserializer = AvroDeserializer(registry)
    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": f"py-interop-{now_ms()}",
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
        # A fast group join on the test broker.
        "session.timeout.ms": 6000,
    })
    consumer.subscribe([args.topic])
    deadline = time.time() + args.timeout_s
    seen = 0
    while seen < args.expect and time.time() < deadline:
        msg = consumer.poll(1.0)
        if msg is None or msg.error():
            continue
        value = deserializer(msg.value(), SerializationContext(msg.topic(), MessageField.VALUE))
        schema_id = int.from_bytes(msg.value()[1:5], "big")
        print(json.dumps({"schema_id": schema_id, "value": value}, default=str), flush=True)
        seen += 1
    consumer.close()
    if seen < args.expect:
        sys.exit(f"read {seen} of {args.expect} records from {args.topic}")


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("produce")
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--registry", required=True)
    p.add_argument("--schemas", required=True)
    p.add_argument("--raw-topic", required=True)
    p.add_argument("--patients-topic", required=True)
    c = sub.add_parser("consume")
    c.add_argument("--bootstrap", required=True)
    c.add_argument("--registry", required=True)
    c.add_argument("--topic", required=True)
    c.add_argument("--expect", type=int, required=True)
    c.add_argument("--timeout-s", type=float, default=60)
    args = parser.parse_args()
    produce(args) if args.command == "produce" else consume(args)


if __name__ == "__main__":
    main()
