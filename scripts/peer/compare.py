#!/usr/bin/env python3
"""Checks that the Quix peer computes what vitalstream computes on the same backlog.

Reads vitalstream's and the peer's enriched and DLQ topics in full and
compares them record by record: the same enriched reading_ids, each with the
same quality flags, LOINC code, BP category, BMI and body composition (the
peer's scope, quix_peer.py), and the same DLQ records by source offset with
the same reason header. Prints the differences and exits 1 when any.

Usage (python with confluent-kafka and fastavro, e.g. .venv-test/bin/python):
  scripts/peer/compare.py --brokers HOST:PORT --vitalstream PREFIX --peer PREFIX
with PREFIX.enriched / PREFIX.dlq the topic names.
"""

import argparse
import json
import os
import sys
import time
from io import BytesIO

import fastavro
from confluent_kafka import Consumer, TopicPartition

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COMPARED = ("quality_flags", "loinc_code", "bp_category", "body_composition", "bmi")


def schema():
    named = {}
    for name in ("raw_reading", "enriched_reading"):
        with open(os.path.join(ROOT, "schemas", f"{name}.avsc")) as f:
            parsed = fastavro.parse_schema(json.load(f), named)
    return parsed


def read_all(brokers, topic, idle_s=3.0):
    """Every record of `topic` (read_committed), until nothing came for idle_s."""
    c = Consumer({"bootstrap.servers": brokers, "group.id": f"compare-{time.time()}",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                  "isolation.level": "read_committed"})
    meta = c.list_topics(topic, timeout=10).topics[topic]
    c.assign([TopicPartition(topic, p, 0) for p in meta.partitions])
    out, last = [], time.monotonic()
    while time.monotonic() - last < idle_s:
        for m in c.consume(1000, 0.5):
            if m.error() is None:
                out.append(m)
                last = time.monotonic()
    c.close()
    return out


def enriched_by_id(brokers, topic, parsed):
    records = {}
    for m in read_all(brokers, topic):
        e = fastavro.schemaless_reader(BytesIO(m.value()[5:]), parsed)
        records[e["reading"]["reading_id"]] = e
    return records


def dlq_by_source(brokers, topic):
    records = {}
    for m in read_all(brokers, topic):
        h = {k: v.decode() for k, v in (m.headers() or [])}
        records[(h["source_partition"], h["source_offset"])] = (h["reason"], m.key(), m.value())
    return records


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--vitalstream", required=True, help="topic prefix of vitalstream's outputs")
    ap.add_argument("--peer", required=True, help="topic prefix of the peer's outputs")
    args = ap.parse_args()
    parsed = schema()
    vs = enriched_by_id(args.brokers, f"{args.vitalstream}.enriched", parsed)
    peer = enriched_by_id(args.brokers, f"{args.peer}.enriched", parsed)
    problems = []
    for rid in sorted(vs.keys() ^ peer.keys())[:20]:
        problems.append(f"reading {rid}: enriched by {'vitalstream' if rid in vs else 'the peer'} only")
    if len(vs.keys() ^ peer.keys()) > 20:
        problems.append(f"... {len(vs.keys() ^ peer.keys())} readings enriched by one side only")
    for rid in vs.keys() & peer.keys():
        for field in COMPARED:
            a, b = vs[rid][field], peer[rid][field]
            if field == "quality_flags":
                a, b = sorted(a), sorted(b)
            if a != b:
                problems.append(f"reading {rid}: {field} {a!r} (vitalstream) vs {b!r} (peer)")
                break
    vd = dlq_by_source(args.brokers, f"{args.vitalstream}.dlq")
    pd = dlq_by_source(args.brokers, f"{args.peer}.dlq")
    for src in sorted(vd.keys() ^ pd.keys())[:20]:
        problems.append(f"DLQ record of partition/offset {src}: only in {'vitalstream' if src in vd else 'the peer'}'s")
    for src in vd.keys() & pd.keys():
        if vd[src] != pd[src]:
            problems.append(f"DLQ record {src}: reason/key/bytes differ: {vd[src][0]} vs {pd[src][0]}")
    with_body = sum(1 for e in vs.values() if e["body_composition"] is not None)
    with_bp = sum(1 for e in vs.values() if e["bp_category"] is not None)
    print(f"enriched: vitalstream {len(vs)} ({with_body} with body composition, {with_bp} with a BP "
          f"category), peer {len(peer)}; DLQ: vitalstream {len(vd)}, peer {len(pd)}")
    for p in problems[:50]:
        print(p)
    print(f"{len(problems)} differences" if problems else "same outputs")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
