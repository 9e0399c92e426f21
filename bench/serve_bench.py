#!/usr/bin/python3
"""serve_bench.py - pefa-serve under load (the bench-serve target).

  serve_bench.py --bin BIN_DIR --data GLOVE_DIR --out DIR [--quick] [--seconds S] [--threads N]

1. Inputs and the index (cached in --out): GloVe-100, 331,479 passages with
   their words as ids, 8,000 synthetic training queries (each relevant to its
   10 exact neighbours), 2,000 held-out test queries (bench/serve_data.py);
   pefa-build -M 16 --ef-construction 200.
2. In process: pefa-query over the 2,000 test queries, one thread (the
   single-query latency) and N threads (the throughput to compare with).
3. pefa-serve --threads N on 127.0.0.1, and wrk (bench/serve.lua) per mode:
   saturation (8 connections back to back), then 50% and 80% of that rate
   (each connection waits an exponential random time after each answer, the
   mean calibrated in 2 s runs; wrk is closed-loop, so the achieved rate is
   reported, and a request waits only behind requests already sent),
   each for S seconds (60; --quick: 3).
4. The same again while the index file is replaced by rename every 5 s
   (two hard links of one file, alternately: a new inode each time, so each
   is a full load + verify): every error counted.

Everything runs on this machine: wrk's thread competes with the server's for
the same cores, and the figures are only as quiet as the machine is. So the
table also gives the server's CPU time per request (from /proc) against
pefa-query's per query: a ratio that other jobs on the machine do not change.
"""
import argparse
import json
import math
import os
import re
import resource
import shutil
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MODES = ("erm", "xs", "xl")


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def prepare(a):
    idx = os.path.join(a.out, "glove300k.pefa")
    if not os.path.exists(os.path.join(a.out, "bodies_xl.jsonl")):
        run([sys.executable, os.path.join(HERE, "serve_data.py"), a.data, a.out])
    if not os.path.exists(idx):
        print("building the 331k-row index (M 16, efC 200; a few minutes) ...", flush=True)
        t = time.time()
        run([os.path.join(a.bin, "pefa-build"), "-q", "-o", idx, "--passages", os.path.join(a.data, "glove-base.npy"),
             "--passage-ids", os.path.join(a.out, "passage_ids.txt"), "--queries", os.path.join(a.out, "train_q.npy"),
             "--qrels", os.path.join(a.out, "train_qrels.tsv"), "-M", "16", "--ef-construction", "200",
             "--encoder", "glove-100 (bench-serve)"])
        print(f"  built in {time.time() - t:.0f} s", flush=True)
    # two names of one file (hard links, two inodes after the first rename) for the reload runs
    live, alt = os.path.join(a.out, "live.pefa"), os.path.join(a.out, "alt.pefa")
    for p in (live, alt):
        if os.path.exists(p):
            os.unlink(p)
    shutil.copyfile(idx, alt)  # a second inode with the same content
    os.link(idx, live)
    return idx, live, alt


def cpu_seconds(pid):
    """user + system CPU time of a process so far"""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def in_process(a, idx, mode, threads):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run([os.path.join(a.bin, "pefa-query"), idx, "--queries", os.path.join(a.out, "test_q.npy"),
                        "--mode", mode, "-k", "10", "--threads", str(threads), "--no-output", "--trust-idmap"],
                       check=True, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    m = re.search(r"queries=(\d+) .*qps=([\d.]+) latency_ms p50=([\d.]+) p99=([\d.]+)", r.stderr)
    n = int(m.group(1))
    # CPU per query includes opening the index and reading the queries (a few ms in all)
    return {"qps": float(m.group(2)), "p50_ms": float(m.group(3)), "p99_ms": float(m.group(4)),
            "cpu_us_per_query": 1e6 * cpu / n}


class Server:
    def __init__(self, a, live):
        self.log = open(os.path.join(a.out, "serve.log"), "w+")
        self.p = subprocess.Popen([os.path.join(a.bin, "pefa-serve"), live, "--listen", "127.0.0.1:0", "--threads",
                                   str(a.threads), "--poll-ms", "200"], stderr=self.log, stdout=subprocess.DEVNULL)
        for _ in range(600):
            self.log.flush()
            m = re.search(r"listen=127\.0\.0\.1:(\d+)", open(self.log.name).read())
            if m:
                self.port = int(m.group(1))
                return
            time.sleep(0.1)
        raise SystemExit("pefa-serve did not start: " + open(self.log.name).read())

    def text(self):
        self.log.flush()
        return open(self.log.name).read()

    def stop(self):
        self.p.terminate()
        return self.p.wait(120)


def wrk(a, port, mode, seconds, conns, delay_ms):
    env = dict(os.environ, BENCH_BODIES=os.path.join(a.out, f"bodies_{mode}.jsonl"), BENCH_DELAY_MS=str(delay_ms))
    r = subprocess.run(["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--timeout", "10s", "-s",
                        os.path.join(HERE, "serve.lua"), f"http://127.0.0.1:{port}/search"],
                       env=env, capture_output=True, text=True, timeout=seconds + 120)
    m = re.search(r"BENCH (\{.*\})", r.stdout)
    if not m:
        raise SystemExit("wrk failed: " + r.stdout + r.stderr)
    d = json.loads(m.group(1))
    d["rps"] = d["requests"] / (d["duration_us"] / 1e6)
    d["errors"] = d["connect"] + d["read"] + d["write"] + d["status"] + d["timeout"]
    return d


def paced(a, port, mode, seconds, rate, light_ms):
    """about `rate` requests/s: connections that each wait a random time
    (exponential) after every answer; the mean wait is set from a short
    calibration run (the achieved rate is what the table reports)"""
    conns = max(4, math.ceil(rate * 0.030))  # a 30 ms cycle per connection
    delay = max(1.0, conns * 1000.0 / rate - light_ms)
    for _ in range(2):
        cal = wrk(a, port, mode, 2, conns, delay)
        # cycle = service + wait: keep the measured service, change the wait
        service_ms = conns * 1000.0 / cal["rps"] - delay
        delay = max(0.5, conns * 1000.0 / rate - service_ms)
        if abs(cal["rps"] - rate) < 0.03 * rate:
            break
    d = wrk(a, port, mode, seconds, conns, delay)
    d["conns"], d["delay_ms"], d["target_rps"] = conns, delay, rate
    return d


def reloader(live, alt, stop, period, count):
    """every `period` s: the other name of the file, renamed over the live one"""
    names = [alt, live + ".a"]
    os.link(live, names[1])  # keep the first inode reachable
    i = 0
    while not stop.wait(period):
        tmp = live + ".incoming"
        os.link(names[i % 2], tmp)
        os.rename(tmp, live)
        count[0] += 1
        i += 1
    os.unlink(names[1])


def measure(a, s, mode, light_ms):
    cpu0 = cpu_seconds(s.p.pid)
    sat = wrk(a, s.port, mode, a.seconds, 8, 0)
    # the server's own CPU per request: what the load on the machine does not change
    sat["server_cpu_us"] = 1e6 * (cpu_seconds(s.p.pid) - cpu0) / max(1, sat["requests"])
    row = {"sat": sat}
    for frac in (0.5, 0.8):
        row[frac] = paced(a, s.port, mode, a.seconds, frac * sat["rps"], light_ms)
    return row


def fmt_row(mode, r, ref):
    s = r["sat"]
    out = (f"| {mode} | {s['rps']:.0f} | {100 * s['rps'] / ref['qps_n']:.0f}% | {s['server_cpu_us']:.0f} us, "
           f"{100 * ref['cpu_us_per_query'] / s['server_cpu_us']:.0f}% |")
    for frac in (0.5, 0.8):
        d = r[frac]
        out += f" {d['rps']:.0f} ({100 * d['rps'] / s['rps']:.0f}%) | {d['p50_us'] / 1000:.2f} / {d['p99_us'] / 1000:.2f} |"
    p99x = r[0.8]["p99_us"] / 1000 / ref["p50_ms"]
    errs = s["errors"] + r[0.5]["errors"] + r[0.8]["errors"]
    return out + f" {p99x:.1f}x | {errs} |"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--quick", action="store_true", help="3 s per run (about two minutes in all)")
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--modes", default=",".join(MODES))
    a = ap.parse_args()
    if a.quick:
        a.seconds = 3
    if not shutil.which("wrk"):
        raise SystemExit("wrk not found (apt install wrk, or scripts/deps.sh bench)")
    os.makedirs(a.out, exist_ok=True)
    idx, live, alt = prepare(a)
    modes = a.modes.split(",")
    ref = {}
    for m in modes:
        one, many = in_process(a, idx, m, 1), in_process(a, idx, m, a.threads)
        ref[m] = {"p50_ms": one["p50_ms"], "p99_ms": one["p99_ms"], "qps_1": one["qps"], "qps_n": many["qps"],
                  "cpu_us_per_query": one["cpu_us_per_query"]}
        print(f"in process {m}: one thread p50 {one['p50_ms']:.3f} ms p99 {one['p99_ms']:.3f} ms; "
              f"{a.threads} threads {many['qps']:.0f} qps", flush=True)
    s = Server(a, live)
    results = {"plain": {}, "reload": {}}
    try:
        for m in modes:  # unloaded latency through HTTP, to set the pacing
            light = wrk(a, s.port, m, 2, 1, 0)
            results.setdefault("light", {})[m] = light
            results["plain"][m] = measure(a, s, m, light["p50_us"] / 1000)
            print(f"plain {m}: {results['plain'][m]['sat']['rps']:.0f} rps at saturation", flush=True)
        stop, count = threading.Event(), [0]
        t = threading.Thread(target=reloader, args=(live, alt, stop, 5.0, count))
        t.start()
        try:
            for m in modes:
                results["reload"][m] = measure(a, s, m, results["light"][m]["p50_us"] / 1000)
                print(f"reload {m}: {results['reload'][m]['sat']['rps']:.0f} rps at saturation", flush=True)
        finally:
            stop.set()
            t.join()
        log = s.text()
    finally:
        rc = s.stop()
    results["renames"] = count[0]
    results["reloads_logged"] = len(re.findall(r" reload file replaced", log))
    results["refused_logged"] = len(re.findall(r" refuse ", log))
    results["ref"] = ref
    results["seconds"] = a.seconds
    results["server_exit"] = rc
    lines = [f"pefa-serve --threads {a.threads}, wrk -t1 on the same {os.cpu_count()} cores, {a.seconds} s per run, "
             f"k 10, GloVe-100 331,479 passages",
             "", "| mode | saturation rps | vs pefa-query --threads N | server CPU per request, pefa-query's as % of it "
             "| 50%: rps | p50 / p99 ms | 80%: rps | p50 / p99 ms | p99@80% / in-process p50 | errors |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for kind in ("plain", "reload"):
        if kind == "reload":
            lines.append(f"| **with a reload every 5 s** ({count[0]} renames, {results['reloads_logged']} reloads "
                         f"logged, {results['refused_logged']} refused) | | | | | | | | | |")
        for m in modes:
            lines.append(fmt_row(m, results[kind][m], ref[m]))
    lines.append("")
    for m in modes:
        lines.append(f"in process {m}: one thread p50 {ref[m]['p50_ms']:.3f} ms p99 {ref[m]['p99_ms']:.3f} ms "
                     f"({ref[m]['qps_1']:.0f} qps, {ref[m]['cpu_us_per_query']:.0f} us CPU a query); "
                     f"{a.threads} threads {ref[m]['qps_n']:.0f} qps; through HTTP "
                     f"unloaded p50 {results['light'][m]['p50_us'] / 1000:.3f} ms")
    text = "\n".join(lines)
    print(text)
    with open(os.path.join(a.out, "bench-serve.md"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(a.out, "bench-serve.json"), "w") as f:
        json.dump(results, f, indent=1, default=str)
    errors = sum(results[k][m][x]["errors"] for k in ("plain", "reload") for m in modes for x in ("sat", 0.5, 0.8))
    if errors or results["refused_logged"] or rc != 0:
        raise SystemExit(f"FAILED: {errors} request errors, {results['refused_logged']} refused reloads, exit {rc}")


main()
