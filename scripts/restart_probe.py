#!/usr/bin/env python3
"""Restart -> ready, repeated over one backlog: for iterating on start-up
time and memory without re-running the whole backlog benchmark.

  setup BIN READINGS PATIENTS GUARANTEE
      starts tansu (in memory, left running), writes the backlog with
      `BIN loadgen` on 3 partitions, runs `BIN run` until it has consumed
      it, stops it; keeps the broker and config in --dir.
  restart BIN [N]
      starts the caught-up instance N times (log level info), each until
      /readyz answers 200, and reports seconds to ready, the sum of
      vitalstream_state_restore_seconds, peak and current RSS, and the
      CPU seconds of vitalstream and of tansu by then; the start-up
      phases are in each run's log (`start-up complete`).
  stop
      stops the broker.

The config is scripts/backlog_bench.py's (log_markers reader for tansu).
Run benchmarks under the shared lock: `flock /tmp/bench.lock ...`.
TANSU_BIN names the tansu binary.
"""
import argparse, json, os, signal, socket, subprocess, sys, time


# The helpers the backlog benchmark already has (one copy of each).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from backlog_bench import free_port, ready, scrape  # noqa: E402


def status_mib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def config(brokers, mode, http):
    p = f"bench-{mode}"
    return f'''[kafka]
brokers = "{brokers}"
group_id = "{p}"
transactional_id = "{p}-1"
# As scripts/backlog_bench.py: tansu holds a join for half of it.
session_timeout_ms = 6000
changelog_reader = "log_markers"
[topics]
enriched = "{p}.enriched"
hrv_windows = "{p}.hrv"
alerts = "{p}.alerts"
dlq = "{p}.dlq"
[processing]
guarantee = "{mode}"
[http]
listen_addr = "{http}"
[telemetry]
log_level = "warn"
'''


def setup(d, binary, readings, patients, mode):
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    log = open(os.path.join(d, "tansu.log"), "w")
    broker = subprocess.Popen(
        [os.environ["TANSU_BIN"], "broker", "--listener-url", url, "--advertised-listener-url", url,
         "--storage-engine", "memory://tansu/"], stdout=log, stderr=log, start_new_session=True)
    brokers = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                sys.exit("tansu did not start")
            time.sleep(0.05)
    subprocess.run([binary, "loadgen", "--brokers", brokers, "--create-topics", "--partitions", "3",
                    "--count", str(readings), "--patients", str(patients), "--rate", "10000000",
                    "--duration", "1h"], check=True, capture_output=True)
    http = f"127.0.0.1:{free_port()}"
    cfg = os.path.join(d, f"{mode}.toml")
    with open(cfg, "w") as f:
        f.write(config(brokers, mode, http))
    log = open(os.path.join(d, f"{mode}-catchup.log"), "w")
    proc = subprocess.Popen([binary, "run", "--config", cfg, "--create-topics", "--partitions", "3"],
                            stdout=log, stderr=log)
    while True:
        time.sleep(1)
        if proc.poll() is not None:
            sys.exit(f"vitalstream exited with {proc.returncode}")
        try:
            if scrape(http).get("vitalstream_readings_consumed_total", 0) >= readings:
                break
        except OSError:
            pass
    proc.send_signal(signal.SIGTERM)
    proc.wait()
    with open(os.path.join(d, "env.json"), "w") as f:
        json.dump({"tansu_pid": broker.pid, "mode": mode, "http": http, "config": cfg}, f)
    print(f"backlog of {readings} readings of {patients} patients caught up; broker {brokers}")


def restart(d, binary, n):
    with open(os.path.join(d, "env.json")) as f:
        env = json.load(f)
    for i in range(n):
        logpath = os.path.join(d, f"{env['mode']}-restart-{i}.log")
        log = open(logpath, "w")
        tansu0 = cpu_s(env["tansu_pid"])
        started = time.monotonic()
        proc = subprocess.Popen([binary, "run", "--config", env["config"], "--partitions", "3"],
                                stdout=log, stderr=log,
                                env=dict(os.environ, VITALSTREAM_TELEMETRY__LOG_LEVEL="info"))
        while not ready(env["http"]):
            if proc.poll() is not None:
                sys.exit(f"exited with {proc.returncode}, see {logpath}")
            time.sleep(0.02)
        seconds = time.monotonic() - started
        peak, rss = status_mib(proc.pid, "VmHWM"), status_mib(proc.pid, "VmRSS")
        cpu, tansu = cpu_s(proc.pid), cpu_s(env["tansu_pid"]) - tansu0
        restore = scrape(env["http"]).get("vitalstream_state_restore_seconds_sum", 0.0)
        proc.send_signal(signal.SIGTERM)
        proc.wait()
        log.close()
        print(f"restart {i}: ready {seconds:.2f} s, restore sum {restore:.2f} s, peak RSS {peak:.0f} MiB, "
              f"RSS {rss:.0f} MiB, CPU {cpu:.2f} s (tansu {tansu:.2f} s); log {logpath}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", default="/tmp/vitalstream-restart-probe")
    ap.add_argument("command", choices=["setup", "restart", "stop"])
    ap.add_argument("args", nargs="*")
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    if a.command == "setup":
        binary, readings, patients, mode = a.args
        setup(a.dir, binary, int(readings), int(patients), mode)
    elif a.command == "restart":
        restart(a.dir, a.args[0], int(a.args[1]) if len(a.args) > 1 else 1)
    else:
        with open(os.path.join(a.dir, "env.json")) as f:
            os.kill(json.load(f)["tansu_pid"], signal.SIGTERM)


if __name__ == "__main__":
    main()
