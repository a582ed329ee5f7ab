#!/usr/bin/env python3
"""An RPM alert consumer for vitalstream's `vitals.alerts` topic.

What docs/consuming.md explains, as code:

* the consumer reads with ``isolation.level=read_committed``: vitalstream
  writes its outputs in Kafka transactions, and only committed ones are real;
* it commits its own offsets only after an alert is handled (at least once),
  so it drops repeats by ``alert_id`` (deterministic: the same evidence always
  gives the same id);
* values are Confluent-framed Avro (byte 0 = 0, a 4-byte big-endian schema id,
  the Avro datum), decoded with fastavro against the schemas in
  ``schemas/*.avsc``; clinical values are Avro decimals and stay
  ``decimal.Decimal`` (printed as strings), never floats.

Each new alert is printed as one JSON line on stdout; everything else goes to
stderr. Needs ``confluent-kafka`` and ``fastavro``
(``scripts/requirements-test.txt``).

    python3 examples/alert_consumer.py --brokers localhost:9092
    python3 examples/alert_consumer.py --config deploy/config/vitalstream.toml \
        --group care-team-dashboard --from-beginning
"""

import argparse
import collections
import datetime
import decimal
import io
import json
import os
import struct
import sys

import fastavro
from confluent_kafka import Consumer, KafkaError, KafkaException

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMA_DIR = os.path.join(HERE, "..", "schemas")

# vitalstream's defaults for `[topics]` and `[schemas]`; a `--config` file
# overrides them as it does for vitalstream itself.
DEFAULT_TOPIC = "vitals.alerts"
DEFAULT_ALERT_SCHEMA_ID = 5


def load_alert_schema():
    """The ClinicianAlert schema from schemas/clinician_alert.avsc."""
    with open(os.path.join(SCHEMA_DIR, "clinician_alert.avsc"), encoding="utf-8") as f:
        return fastavro.parse_schema(json.load(f))


def decode(value, schema, schema_id):
    """Strips the Confluent framing and decodes the Avro datum.

    Raises ValueError for a record that is not framed or carries another
    schema id (with a schema registry, look the id up there instead).
    """
    if value is None or len(value) < 5 or value[0] != 0:
        raise ValueError("not a Confluent-framed record")
    (writer_id,) = struct.unpack(">I", value[1:5])
    if writer_id != schema_id:
        raise ValueError(f"schema id {writer_id}, expected {schema_id}")
    return fastavro.schemaless_reader(io.BytesIO(value[5:]), schema)


def as_json(alert):
    """The alert as a JSON-ready dict: decimals as strings, times as ISO 8601."""

    def plain(v):
        if isinstance(v, decimal.Decimal):
            return str(v)  # exact: "38.500", never 38.5 as a binary float
        if isinstance(v, datetime.datetime):
            return v.isoformat()
        return v

    return {k: plain(v) for k, v in alert.items()}


class SeenAlerts:
    """The alert ids already handled, the newest `capacity` of them.

    In production, make the handling itself idempotent instead (a unique key
    on alert_id in the database that stores alerts); this bounded set is
    enough for repeats that arrive close together.
    """

    def __init__(self, capacity=100_000):
        self.capacity = capacity
        self.ids = collections.OrderedDict()

    def add(self, alert_id):
        """True if alert_id is new."""
        if alert_id in self.ids:
            self.ids.move_to_end(alert_id)
            return False
        self.ids[alert_id] = None
        if len(self.ids) > self.capacity:
            self.ids.popitem(last=False)
        return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", help="vitalstream TOML file: [kafka] brokers, [topics] alerts, [schemas] clinician_alert")
    ap.add_argument("--brokers", help="bootstrap servers (default: the config's, else localhost:9092)")
    ap.add_argument("--group", default="rpm-alert-consumer", help="consumer group id")
    ap.add_argument("--from-beginning", action="store_true", help="a new group starts at the earliest alert")
    ap.add_argument("--max-messages", type=int, help="stop after this many records (for tests)")
    ap.add_argument("--idle-timeout-s", type=float, help="stop after this long without a record")
    args = ap.parse_args()

    brokers, topic, schema_id = "localhost:9092", DEFAULT_TOPIC, DEFAULT_ALERT_SCHEMA_ID
    if args.config:
        import tomllib  # Python 3.11+; only needed for --config

        with open(args.config, "rb") as f:
            cfg = tomllib.load(f)
        brokers = cfg.get("kafka", {}).get("brokers", brokers)
        topic = cfg.get("topics", {}).get("alerts", topic)
        schema_id = cfg.get("schemas", {}).get("clinician_alert", schema_id)
    brokers = args.brokers or os.environ.get("VITALSTREAM_KAFKA__BROKERS") or brokers

    consumer = Consumer(
        {
            "bootstrap.servers": brokers,
            "group.id": args.group,
            # Only records of committed transactions: an aborted batch is
            # redone by vitalstream, and its first copy must not page anyone.
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest" if args.from_beginning else "latest",
            # Offsets are committed after an alert is handled, not before.
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
        }
    )
    consumer.subscribe([topic])
    schema = load_alert_schema()
    seen = SeenAlerts()
    consumed = 0
    idle_since = datetime.datetime.now()
    print(f"reading {topic} from {brokers} (group {args.group})", file=sys.stderr)
    try:
        while args.max_messages is None or consumed < args.max_messages:
            msg = consumer.poll(0.5)
            if msg is None:
                idle = (datetime.datetime.now() - idle_since).total_seconds()
                if args.idle_timeout_s is not None and idle > args.idle_timeout_s:
                    print(f"no record for {args.idle_timeout_s} s, stopping", file=sys.stderr)
                    break
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise KafkaException(msg.error())
            consumed += 1
            idle_since = datetime.datetime.now()
            try:
                alert = decode(msg.value(), schema, schema_id)
            except (ValueError, EOFError, StopIteration) as e:
                # Never the payload: it is health data.
                print(f"skipping partition {msg.partition()} offset {msg.offset()}: {e}", file=sys.stderr)
            else:
                if seen.add(alert["alert_id"]):
                    # Hand the alert on here (page, store, show); then commit.
                    print(json.dumps(as_json(alert), ensure_ascii=False), flush=True)
                else:
                    print(f"duplicate alert_id {alert['alert_id']} skipped", file=sys.stderr)
            consumer.commit(message=msg, asynchronous=False)
    finally:
        consumer.close()


if __name__ == "__main__":
    main()
