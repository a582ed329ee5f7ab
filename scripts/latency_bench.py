#!/usr/bin/env python3
"""End-to-end latency benchmark at a steady input rate, measured from outside.

Starts tansu (in-memory storage) on a free loopback port and, one target
after the other in the same run:

  * passthrough: the no-op consume -> produce copy (examples/passthrough.rs,
    vitalstream's client settings), the transport's floor in this run;
  * at_least_once and exactly_once: a release `vitalstream run` (default
    settings, exactly_once with its default 100 ms commit interval).

Each target gets its own raw topic (3 partitions by default) and is fed by
`vitalstream loadgen --rate 10000 --patients 2000` for a warm-up and then
the measured window. A read_committed consumer outside the process
(examples/latency_probe.rs) reads the raw and the output topic, joins them
by reading id and times every output whose raw record was produced in the
window: latency = the moment the output became readable by the probe - the
raw record's producer timestamp (CreateTime, set by librdkafka in loadgen).

Reported per target: records timed, the achieved input rate (raw records
produced in the window / window), p50/p90/p99/p99.9/max in ms, the
target's CPU time (user + system, whole process) per raw reading over the
window, tansu's CPU per reading, vitalstream's own mean publish latency
(consumed -> delivered/committed, from /metrics), the load average, and
the raw hop alone (loadgen -> broker ->
probe: the floor under every output's latency); as a markdown table.

Broker workarounds: tansu 0.6 answers every fetch only after its max wait
(or half of it when that is 250 ms or more), even when records are ready,
where Kafka answers at once. librdkafka's default fetch.wait.max.ms of 500
then adds about 250 ms to every hop. `--fetch-wait-ms` (default 5) sets
fetch.wait.max.ms for the probe and, through `[kafka.librdkafka]` and the
passthrough's trailing properties, for the targets; 0 leaves librdkafka's
default everywhere (for the comparison). These settings are a tansu
workaround, not vitalstream's production defaults.

Usage: .venv-test/bin/python scripts/latency_bench.py [--seconds 30]
       [--warmup 10] [--rate 10000] [--patients 2000] [--partitions 3]
       [--targets passthrough,at_least_once,exactly_once] [--fetch-wait-ms 5]
       [--librdkafka PROPERTY=VALUE ...] [--probe-librdkafka PROPERTY=VALUE ...]
Builds the release binaries itself. Run it under `flock /tmp/bench.lock`
on a shared machine.
"""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import backlog_bench as bb  # noqa: E402  (shared helpers: tansu, ports, /proc, /metrics)

ROOT = bb.ROOT
BIN = bb.BIN
PASSTHROUGH = bb.PASSTHROUGH
PROBE = os.path.join(ROOT, "target", "release", "examples", "latency_probe")
TARGETS = ("passthrough", "at_least_once", "exactly_once")


def stop(proc, timeout=30):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def loadgen(brokers, topic, args, seed, count=None, seconds=None, log=None):
    cmd = [BIN, "loadgen", "--brokers", brokers, "--topic", topic, "--create-topics",
           "--partitions", str(args.partitions), "--patients", str(args.patients),
           "--rate", str(args.rate), "--seed", str(seed)]
    if count is not None:
        cmd += ["--count", str(count)]
    if seconds is not None:
        cmd += ["--duration", f"{seconds}s"]
    return subprocess.Popen(cmd, stdout=log or subprocess.DEVNULL, stderr=log or subprocess.DEVNULL)


def start_target(target, brokers, raw_topic, args, workdir, librdkafka):
    """Starts a target; returns (process, output topic, output kind, log)."""
    log = open(os.path.join(workdir, f"{target}.log"), "w")
    if target == "passthrough":
        proc = subprocess.Popen([PASSTHROUGH, brokers, raw_topic, str(10**12), *librdkafka],
                                stdout=log, stderr=log)
        return proc, f"{raw_topic}.passthrough", "raw", log, None
    http_addr = f"127.0.0.1:{bb.free_port()}"
    cfg = os.path.join(workdir, f"{target}.toml")
    text = bb.config_text(brokers, target, http_addr, librdkafka)
    text = text.replace("[topics]\n", f'[topics]\nraw = "{raw_topic}"\n', 1)
    with open(cfg, "w") as f:
        f.write(text)
    proc = subprocess.Popen([BIN, "run", "--config", cfg, "--create-topics",
                             "--partitions", str(args.partitions)], stdout=log, stderr=log)
    deadline = time.monotonic() + 120
    while not bb.ready(http_addr):
        if proc.poll() is not None:
            sys.exit(f"{target}: exited with {proc.returncode}, see {log.name}")
        if time.monotonic() > deadline:
            stop(proc)
            sys.exit(f"{target}: not ready within 120 s, see {log.name}")
        time.sleep(0.05)
    return proc, f"bench-{target}.enriched", "enriched", log, http_addr


def in_process(addr):
    """vitalstream's own view: sums and counts of its publish latency
    (consumed -> delivered or committed) and batch duration histograms."""
    if addr is None:
        return {}
    m = bb.scrape(addr)
    return {k: m.get(f"vitalstream_{k}", 0.0) for k in (
        "publish_latency_seconds_sum", "publish_latency_seconds_count",
        "batch_duration_seconds_sum", "batch_duration_seconds_count")}


def measure(target, index, brokers, broker_pid, args, workdir):
    raw_topic = f"latency-{target}.raw"
    seed = 100 + index
    # The raw and patients topics, and the patients' profiles, before the target starts.
    made = loadgen(brokers, raw_topic, args, seed, count=0)
    if made.wait(120) != 0:
        sys.exit(f"{target}: creating {raw_topic} failed")
    librdkafka = list(args.librdkafka)
    probe_settings = list(args.probe_librdkafka)
    if args.fetch_wait_ms > 0:
        librdkafka.append(f"fetch.wait.max.ms={args.fetch_wait_ms}")
        probe_settings.append(f"fetch.wait.max.ms={args.fetch_wait_ms}")
    proc, out_topic, kind, log, http_addr = start_target(target, brokers, raw_topic, args, workdir, librdkafka)
    try:
        now_ms = int(time.time() * 1000)
        start_ms = now_ms + 1000
        from_ms = start_ms + args.warmup * 1000
        until_ms = from_ms + args.seconds * 1000
        stop_ms = until_ms + args.drain * 1000
        probe_cmd = [PROBE, "--brokers", brokers, "--raw-topic", raw_topic, "--output-topic", out_topic,
                     "--kind", kind, "--partitions", str(args.partitions),
                     "--from-ms", str(from_ms), "--until-ms", str(until_ms), "--stop-ms", str(stop_ms)]
        for s in probe_settings:
            probe_cmd += ["-X", s]
        probe_log = open(os.path.join(workdir, f"{target}-probe.log"), "w")
        probe = subprocess.Popen(probe_cmd, stdout=subprocess.PIPE, stderr=probe_log, text=True)
        time.sleep(max(0.0, start_ms / 1000 - time.time()))
        gen_log = open(os.path.join(workdir, f"{target}-loadgen.log"), "w")
        gen = loadgen(brokers, raw_topic, args, seed, seconds=args.warmup + args.seconds + 1, log=gen_log)
        time.sleep(max(0.0, from_ms / 1000 - time.time()))
        cpu_from, broker_from, m_from = bb.cpu_seconds(proc.pid), bb.cpu_seconds(broker_pid), in_process(http_addr)
        time.sleep(max(0.0, until_ms / 1000 - time.time()))
        cpu_until, broker_until, m_until = bb.cpu_seconds(proc.pid), bb.cpu_seconds(broker_pid), in_process(http_addr)
        load = os.getloadavg()
        alive = proc.poll() is None
        try:
            out, _ = probe.communicate(timeout=args.drain + 60)
        except subprocess.TimeoutExpired:
            probe.kill()
            sys.exit(f"{target}: the probe did not stop, see {probe_log.name}")
        stop(gen)
        gen_log.close()
        probe_log.close()
        if probe.returncode != 0 or not out.strip():
            sys.exit(f"{target}: probe failed ({probe.returncode}), see {probe_log.name}")
        if not alive:
            sys.exit(f"{target}: exited during the window ({proc.returncode}), see {log.name}")
        r = json.loads(out.strip().splitlines()[-1])
    finally:
        stop(proc)
        log.close()
    r["target"] = target
    r["rate"] = r["raw_in_window"] / args.seconds
    r["cpu_us"] = (cpu_until - cpu_from) * 1e6 / max(r["raw_in_window"], 1)
    r["broker_cpu_us"] = (broker_until - broker_from) * 1e6 / max(r["raw_in_window"], 1)
    r["load"] = load
    d = {k: m_until[k] - m_from[k] for k in m_until}
    if d.get("publish_latency_seconds_count"):
        r["in_process_ms"] = 1000 * d["publish_latency_seconds_sum"] / d["publish_latency_seconds_count"]
    if d.get("batch_duration_seconds_count"):
        r["batch_ms"] = 1000 * d["batch_duration_seconds_sum"] / d["batch_duration_seconds_count"]
        r["batches_per_s"] = d["batch_duration_seconds_count"] / args.seconds
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=30, help="measured window per target")
    ap.add_argument("--warmup", type=int, default=10, help="seconds fed before the window")
    ap.add_argument("--drain", type=int, default=5, help="seconds the probe keeps reading after it")
    ap.add_argument("--rate", type=int, default=10_000)
    ap.add_argument("--patients", type=int, default=2_000)
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--targets", default=",".join(TARGETS))
    ap.add_argument("--fetch-wait-ms", type=int, default=5,
                    help="fetch.wait.max.ms for every consumer (tansu workaround); 0: librdkafka's default")
    ap.add_argument("--librdkafka", action="append", default=[], metavar="PROPERTY=VALUE",
                    help="extra librdkafka property for the targets (repeatable)")
    ap.add_argument("--probe-librdkafka", action="append", default=[], metavar="PROPERTY=VALUE",
                    help="extra librdkafka property for the probe (repeatable)")
    args = ap.parse_args()
    # A SIGTERM (timeout, flock -w) unwinds through the finally blocks, so
    # the broker and the targets are stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))
    targets = [t for t in args.targets.split(",") if t]
    for t in targets:
        if t not in TARGETS:
            sys.exit(f"unknown target {t}: one of {', '.join(TARGETS)}")

    subprocess.run(["cargo", "build", "--release", "--locked", "--quiet", "--bin", "vitalstream",
                    "--example", "passthrough", "--example", "latency_probe"], cwd=ROOT, check=True)
    port = bb.free_port()
    url = f"tcp://127.0.0.1:{port}"
    workdir = tempfile.mkdtemp(prefix="vitalstream-latency-")
    broker_log = open(os.path.join(workdir, "tansu.log"), "w")
    broker = subprocess.Popen(
        [bb.tansu_path(), "broker", "--listener-url", url, "--advertised-listener-url", url,
         "--storage-engine", "memory://tansu/"],
        stdout=broker_log, stderr=broker_log)
    results = []
    try:
        bb.wait_listening(port)
        brokers = f"127.0.0.1:{port}"
        for i, target in enumerate(targets):
            r = measure(target, i, brokers, broker.pid, args, workdir)
            print(f"{target}: {json.dumps(r)}", flush=True)
            results.append(r)
    finally:
        if broker.poll() is not None:
            print(f"tansu exited with {broker.returncode}: see {broker_log.name}")
        broker.kill()
        broker.wait()
        broker_log.close()
    base = next((r for r in results if r["target"] == "passthrough"), None)
    settings = ", ".join([f"fetch.wait.max.ms={args.fetch_wait_ms}" if args.fetch_wait_ms else
                          "librdkafka's default fetch wait", *args.librdkafka])
    print(f"\n{args.rate} readings/s offered, {args.patients} patients, {args.partitions} partitions, "
          f"{args.warmup} s warm-up, {args.seconds} s window; {settings}")
    print("\n| target | timed | input r/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms "
          "| p99 / passthrough | raw hop p50/p99 ms | in-process mean ms | CPU µs/reading | broker CPU µs/reading "
          "| load (1 min) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        ratio = f"{r['p99_ms'] / base['p99_ms']:.2f}" if base and base["p99_ms"] else "–"
        print(f"| {r['target']} | {r['timed']} | {r['rate']:.0f} | {r['p50_ms']:.1f} | {r['p90_ms']:.1f} "
              f"| {r['p99_ms']:.1f} | {r['p999_ms']:.1f} | {r['max_ms']:.1f} | {ratio} "
              f"| {r['raw_hop_p50_ms']:.0f}/{r['raw_hop_p99_ms']:.0f} | {r.get('in_process_ms', float('nan')):.1f} "
              f"| {r['cpu_us']:.1f} | {r['broker_cpu_us']:.1f} | {r['load'][0]:.2f} |")
    print(f"\nmachine: {os.cpu_count()} cores; logs in {workdir}")


if __name__ == "__main__":
    main()
