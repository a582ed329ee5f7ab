#!/bin/sh
# Creates vitalstream's topics on the compose broker (run once by the kafka-init
# service). Idempotent: --if-not-exists, so `docker compose up` can run it again.
#
# Partition counts: the raw topic sets the parallelism (at most 6 busy
# instances). The state changelog is per input partition, so it has as many
# partitions as the raw topic. The outputs are keyed by patient like the input.
set -eu

BOOTSTRAP="${BOOTSTRAP:-kafka:9092}"
GROUP_ID="${GROUP_ID:-vitalstream}"
TOPICS=/opt/kafka/bin/kafka-topics.sh
DAY_MS=86400000

create() {
    name="$1"; partitions="$2"; shift 2
    echo "topic ${name}: ${partitions} partitions $*"
    "$TOPICS" --bootstrap-server "$BOOTSTRAP" --create --if-not-exists \
        --topic "$name" --partitions "$partitions" --replication-factor 1 "$@"
}

# Inputs.
# Delete-policy topics roll a segment at least daily (segment.ms): a record
# leaves once its whole segment is older than retention.ms, so the longest a
# record (an erased patient's too) stays is retention.ms + segment.ms
# (docs/operations.md, "Topic retention and erasure").
create vitals.readings.raw 6 --config retention.ms=$((7 * DAY_MS)) --config segment.ms=$DAY_MS
# Patient profiles: a table, latest value per patient; a tombstone deletes the
# account, compaction removes the profile within a day of it
# (max.compaction.lag.ms) and the tombstone a day later (erasure).
create vitals.patients 6 --config cleanup.policy=compact \
    --config delete.retention.ms=$DAY_MS --config min.compaction.lag.ms=0 \
    --config max.compaction.lag.ms=$DAY_MS

# Outputs.
create vitals.readings.enriched 6 --config retention.ms=$((7 * DAY_MS)) --config segment.ms=$DAY_MS
create vitals.hrv.windows 6 --config retention.ms=$((7 * DAY_MS)) --config segment.ms=$DAY_MS
create vitals.alerts 6 --config retention.ms=$((30 * DAY_MS)) --config segment.ms=$DAY_MS
create vitals.readings.dlq 6 --config retention.ms=$((14 * DAY_MS)) --config segment.ms=$DAY_MS

# Internal state changelog of the consumer group.
create "vitalstream.${GROUP_ID}.state" 6 --config cleanup.policy=compact \
    --config delete.retention.ms=$DAY_MS --config max.compaction.lag.ms=$DAY_MS

"$TOPICS" --bootstrap-server "$BOOTSTRAP" --describe \
    | grep -E '^Topic: (vitals|vitalstream)\.' || true
echo "topics ready"
