#!/usr/bin/python3
"""serve_test.py - pefa-serve end to end, on loopback only, every wait bounded.

Run by test_serve.sh (which builds the SciFact indexes):
  serve_test.py BIN_DIR WORK_DIR SCIFACT_DIR

  answers   every mode answers as pefa-query does (ids equal, scores within 1e-6),
            single vectors, batches, exact, explain
  bad       every bad input gets its status and an {"error": "<field>: <problem>"};
            the server keeps serving
  k         "k" echoes the k searched with, also when the index has fewer passages
  reload    the file swapped by rename (and SIGHUP) under concurrent requests:
            0 failed, each answer from the old or the new index
  refuse    a damaged or truncated new file is refused, the old one keeps answering
  drain     SIGTERM: no new connections, the slow request in flight completes, exit 0
  set       a shard set (3 shards) served like one index: answers equal pefa-query
            on the set; a new manifest renamed in under load switches atomically;
            a set with a damaged shard is refused and the old set keeps answering
"""
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np

BIN, WORK, SF = sys.argv[1:4]
IDX = os.path.join(WORK, "live.pefa")
passed = failed = 0


def check(cond, what, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print("ok   " + what)
    else:
        failed += 1
        print("FAIL " + what + ((": " + str(detail)[:600]) if detail != "" else ""))
    return cond


class Server:
    """pefa-serve on 127.0.0.1, a port the kernel chose (read from the start line)."""

    def __init__(self, *args, index=None):
        self.log = open(os.path.join(WORK, "serve.log"), "w+")
        self.p = subprocess.Popen([os.path.join(BIN, "pefa-serve"), index or IDX, "--listen", "127.0.0.1:0", *args],
                                  stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.time() + 60
        self.port = None
        while time.time() < deadline and self.p.poll() is None:
            m = re.search(r" start listen=127\.0\.0\.1:(\d+) .*uuid=([0-9a-f-]+)", self.text())
            if m:
                self.port, self.uuid = int(m.group(1)), m.group(2)
                return
            time.sleep(0.05)
        raise SystemExit("pefa-serve did not start:\n" + self.text())

    def text(self):
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def request(self, method, path, body=None, timeout=120, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, r.read(), dict(r.getheaders())
        finally:
            c.close()

    def search(self, obj, **kw):
        st, body, _ = self.request("POST", "/search", json.dumps(obj), **kw)
        try:
            return st, json.loads(body)
        except ValueError:
            return st, {"raw": body[:200]}

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.p.poll() is None:
            self.p.send_signal(sig)
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = self.p.wait()
        # ASan / UBSan / TSan builds: a report is a failure even if the exit status hid it
        text = self.text()
        check("Sanitizer" not in text and "runtime error" not in text, "server log: no sanitizer report",
              text[text.find("Sanitizer") - 200:][:1500] if "Sanitizer" in text else text[-600:])
        return rc


def pefa_query(args, k, index=None):
    out = subprocess.run([os.path.join(BIN, "pefa-query"), index or IDX, "--queries", os.path.join(SF, "test_queries.npy"),
                          "-k", str(k), "--format", "jsonl", *args], capture_output=True, text=True, check=True).stdout
    per_query = {}
    for line in out.splitlines():
        d = json.loads(line)
        per_query.setdefault(int(d["query"]), []).append(d)
    return per_query


Q = np.load(os.path.join(SF, "test_queries.npy")).astype(np.float32)
# float(np.float32) is the exact value: its shortest repr reads back as the same float32
ROWS = [[float(x) for x in q] for q in Q]

MODES = [  # (request fields, pefa-query flags)
    ({"mode": "erm"}, ["--mode", "erm"]),
    ({"mode": "xs"}, ["--mode", "xs"]),
    ({"mode": "xs", "lambda": 0.3}, ["--mode", "xs", "--lambda", "0.3"]),
    ({"mode": "xl", "lambda": 0.1, "knn": 16}, ["--mode", "xl", "--lambda", "0.1", "--knn", "16"]),
    ({"mode": "xl", "lambda": 0.1, "knn": 16, "xl_scoring": "sparse-add"},
     ["--mode", "xl", "--lambda", "0.1", "--knn", "16", "--xl-scoring", "sparse-add"]),
    ({"mode": "xl", "lambda": 0.5, "knn": 32, "knn_norm": "v1"},
     ["--mode", "xl", "--lambda", "0.5", "--knn", "32", "--knn-norm", "v1"]),
    ({"mode": "xl", "lambda": 0.3, "knn": 8, "topk_p": 50}, ["--mode", "xl", "--lambda", "0.3", "--knn", "8", "--topk-p", "50"]),
    ({"mode": "xl", "exact": True}, ["--mode", "xl", "--exact"]),
    ({"mode": "erm", "ef": 40}, ["--mode", "erm", "--ef", "40"]),
    ({}, []),  # every default: the library's default mode
]


def same_hits(got, want, what):
    ids_ok = [h["id"] for h in got] == [w["passage"] for w in want]
    worst = max((abs(h["score"] - w["score"]) for h, w in zip(got, want)), default=0)
    return check(ids_ok and worst <= 1e-6, what, "" if ids_ok else f"{[h['id'] for h in got][:5]} vs "
                 f"{[w['passage'] for w in want][:5]}, worst score diff {worst}")


def test_answers(s):
    k = 20
    for fields, flags in MODES:
        ref = pefa_query(flags, k)
        name = json.dumps(fields)
        bad = []
        for lo in range(0, len(ROWS), 100):  # batches of 100
            st, d = s.search({"vectors": ROWS[lo:lo + 100], "k": k, **fields})
            if st != 200:
                bad.append(f"batch {lo}: {st} {d}")
                continue
            for i, res in enumerate(d["results"]):
                want = ref[lo + i]
                got = res["hits"]
                if [h["id"] for h in got] != [w["passage"] for w in want] or \
                        max(abs(h["score"] - w["score"]) for h, w in zip(got, want)) > 1e-6:
                    bad.append(f"query {lo + i}")
        check(not bad, f"answers {name}: {len(ROWS)} queries equal pefa-query (ids, scores within 1e-6)", bad[:5])
        st, d = s.search({"vector": ROWS[7], "k": k, **fields})
        check(st == 200 and d.get("index_uuid") == s.uuid and "hits" in d, f"answers {name}: single vector, index_uuid")
        if st == 200:
            same_hits(d["hits"], ref[7], f"answers {name}: single vector equals pefa-query")
    # explain: the training queries behind each hit, as pefa-query --explain --format jsonl
    ref = pefa_query(["--mode", "xl", "--lambda", "0.1", "--knn", "16", "--explain"], 10)
    st, d = s.search({"vectors": ROWS[:20], "k": 10, "mode": "xl", "lambda": 0.1, "knn": 16, "explain": True})
    ok = st == 200
    for i in range(20 if ok else 0):
        for h, w in zip(d["results"][i]["hits"], ref[i]):
            ge = [(e["training_query"], round(e["contribution"], 6)) for e in h["explain"]]
            we = [(e["training_query"], round(e["contribution"], 6)) for e in w["explain"]]
            ok = ok and h["id"] == w["passage"] and len(ge) == len(we) and all(
                a[0] == b[0] and abs(a[1] - b[1]) <= 2e-6 for a, b in zip(ge, we))
    check(ok, "explain: contributions equal pefa-query --explain (20 queries)", (st, str(d)[:300]))


def raw(port, data, read_timeout=10, pause=None):
    """sends bytes (a list: pieces with `pause` seconds between), returns the status line or '' if closed"""
    s = socket.create_connection(("127.0.0.1", port), timeout=read_timeout)
    try:
        for piece in (data if isinstance(data, list) else [data]):
            s.sendall(piece)
            if pause:
                time.sleep(pause)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        return buf.split(b"\r\n", 1)[0].decode("latin-1"), buf
    except (ConnectionResetError, BrokenPipeError):
        return "", b""
    finally:
        s.close()


def test_bad_inputs(s):
    v = ROWS[0]
    vs = json.dumps(v)
    cases = [  # name, body (str), status, words the error must hold
        ("malformed JSON", '{"vector": [1, 2', 400, "malformed JSON"),
        ("not an object", "[1, 2, 3]", 400, "expected a JSON object"),
        ("empty body", "", 400, "malformed JSON"),
        ("wrong dimension", '{"vector": [1, 2, 3]}', 400, "vector: 3 values, the index has dimension 100"),
        ("huge exponent (inf)", '{"vector": [1e999' + ", 0" * 99 + "]}", 400, "malformed JSON"),
        ("beyond float32", '{"vector": [1e300' + ", 0" * 99 + "]}", 400, "vector[0]: 1e+300 is not a finite float32"),
        ("NaN literal", '{"vector": [NaN' + ", 0" * 99 + "]}", 400, "malformed JSON"),
        ("string in vector", '{"vector": ["1"' + ", 0" * 99 + "]}", 400, "vector[0]: expected a number"),
        ("k over --max-k", '{"vector": %s, "k": 101}' % vs, 400, "k: 101 is over --max-k 100"),
        ("k zero", '{"vector": %s, "k": 0}' % vs, 400, "k: 0 is not positive"),
        ("k a string", '{"vector": %s, "k": "ten"}' % vs, 400, "k: expected an integer, got a string"),
        ("k a fraction", '{"vector": %s, "k": 1.5}' % vs, 400, "k: expected an integer, got a number"),
        ("unknown mode", '{"vector": %s, "mode": "fast"}' % vs, 400, "mode: 'fast' is not one of erm, xs, xl"),
        ("mode a number", '{"vector": %s, "mode": 3}' % vs, 400, "mode: expected a string"),
        ("unknown field", '{"vector": %s, "lamda": 0.3}' % vs, 400, "lamda: unknown field"),
        ("lambda out of range", '{"vector": %s, "mode": "xl", "lambda": 1.5}' % vs, 400, "lambda: 1.5 is outside [0, 1]"),
        # a field the mode does not use: refused by the library's rule, as pefa-query and Python do
        ("lambda with erm", '{"vector": %s, "mode": "erm", "lambda": 0.3}' % vs, 400,
         "lambda: mode erm does not use it (xs and xl do)"),
        ("lambda, default mode erm", '{"vector": %s, "lambda": 0.3}' % vs, 400,
         "lambda: mode erm, the index's default, does not use it"),
        ("knn with xs", '{"vector": %s, "mode": "xs", "knn": 3}' % vs, 400, "knn: mode xs does not use it (only xl does)"),
        ("topk_p with erm", '{"vector": %s, "mode": "erm", "topk_p": 50}' % vs, 400, "topk_p: mode erm does not use it"),
        ("knn_norm v0 with xs", '{"vector": %s, "mode": "xs", "knn_norm": "v0"}' % vs, 400,
         "knn_norm: mode xs does not use it"),
        ("xl_scoring exact with erm", '{"vector": %s, "mode": "erm", "xl_scoring": "exact"}' % vs, 400,
         "xl_scoring: mode erm does not use it"),
        ("lambda a string", '{"vector": %s, "lambda": "0.3"}' % vs, 400, "lambda: expected a number"),
        ("exact not a boolean", '{"vector": %s, "exact": 1}' % vs, 400, "exact: expected true or false"),
        ("explain without xl", '{"vector": %s, "mode": "erm", "explain": true}' % vs, 400, "explain: works with mode xl"),
        ("explain, default mode", '{"vector": %s, "explain": true}' % vs, 400, "explain: works with mode xl"),
        ("vector and vectors", '{"vector": %s, "vectors": [%s]}' % (vs, vs), 400, "not both"),
        ("no vector", '{"k": 5}', 400, "vector: missing"),
        ("empty batch", '{"vectors": []}', 400, "vectors: empty"),
        ("batch over --max-batch", '{"vectors": [%s]}' % ",".join([vs] * 5), 400, "vectors: 5 queries, over --max-batch 4"),
        ("batch row not an array", '{"vectors": [%s, 7]}' % vs, 400, "vectors[1]: expected an array"),
        ("batch row wrong dimension", '{"vectors": [%s, [1, 2]]}' % vs, 400, "vectors[1]: 2 values"),
        ("duplicate field", '{"vector": %s, "k": 1, "k": 90}' % vs, 400, "duplicate"),
        ("ef a negative", '{"vector": %s, "ef": -3}' % vs, 400, "ef: -3 is not positive"),
        ("knn_norm unknown", '{"vector": %s, "knn_norm": "v2"}' % vs, 400, "knn_norm: 'v2' is not one of v0, v1"),
        ("field name not printable", '{"vector": %s, "\\u0001x": 1}' % vs, 400, "?x: unknown field"),
    ]
    for name, body, want, words in cases:
        st, b, _ = s.request("POST", "/search", body.encode())
        try:
            err = json.loads(b).get("error", "")
        except ValueError:
            err = "(not JSON) " + b[:100].decode("latin-1")
        # the documented form: "<field>: <problem>", the field first
        field = words.split(": ")[0] + ": " if ": " in words else ""
        check(st == want and words in err and err.startswith(field) and re.match(r"[A-Za-z_?][\w\[\]?.]*: ", err),
              f"bad input: {name} -> {want}", f"{st} {err}")
    # over --max-body (64K): with a Content-Length (refused at the headers) and chunked
    big = json.dumps({"vectors": [v] * 40}).encode()
    st, b, _ = s.request("POST", "/search", big)
    check(st == 413 and b"max-body" in b, "bad input: body over --max-body (Content-Length) -> 413", (st, b[:200]))
    c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
    c.putrequest("POST", "/search")
    c.putheader("Transfer-Encoding", "chunked")
    c.endheaders()
    for i in range(0, len(big), 8192):
        piece = big[i:i + 8192]
        c.send(b"%x\r\n%s\r\n" % (len(piece), piece))
    c.send(b"0\r\n\r\n")
    r = c.getresponse()
    check(r.status == 413 and b"max-body" in r.read(), "bad input: chunked body over --max-body -> 413", r.status)
    c.close()
    # paths and methods
    for method, path, want in [("GET", "/nope", 404), ("GET", "/search", 405), ("POST", "/healthz", 405),
                               ("DELETE", "/info", 405), ("PUT", "/search", 405)]:
        st, b, hdr = s.request(method, path, b"{}" if method in ("POST", "PUT") else None)
        check(st == want and b'"error"' in b, f"bad input: {method} {path} -> {want}", (st, b[:100]))
        if want == 405:
            check("Allow" in hdr, f"bad input: {method} {path}: Allow header", hdr)
    # slowloris: a body trickled past --timeout-ms (1000) is cut off, the server goes on
    t0 = time.time()
    body = json.dumps({"vector": v}).encode()
    head = b"POST /search HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
    line, _ = raw(s.port, [head] + [body[i:i + 10] for i in range(0, 200, 10)], pause=0.2)
    took = time.time() - t0
    check(line in ("", "HTTP/1.1 408 Request Timeout"), "bad input: slow body (slowloris) -> connection closed",
          (line, took))
    check(took < 8, f"bad input: slow body cut off in {took:.1f} s")
    # a client that sends half a request and waits: closed by the idle timeout
    t0 = time.time()
    line, _ = raw(s.port, [head + body[:50]], read_timeout=15)
    check(line == "" and time.time() - t0 < 6, f"bad input: stalled body closed after {time.time() - t0:.1f} s", line)
    line, _ = raw(s.port, b"NONSENSE\r\n\r\n")
    check(line.startswith("HTTP/1.1 4") or line == "", "bad input: garbage request line -> 4xx or closed", line)
    st, d = s.search({"vector": v})
    check(st == 200 and len(d["hits"]) == 10, "bad input: still serving afterwards", st)
    st, b, _ = s.request("GET", "/metrics")
    text = b.decode()
    check(st == 200 and re.search(r'pefa_serve_requests_total\{status="400",mode="none"\} \d+', text)
          and 'status="413"' in text and 'status="404"' in text and 'status="405"' in text,
          "metrics: refused requests counted by status", text[:400])


def test_info(s):
    st, b, hdr = s.request("GET", "/healthz")
    d = json.loads(b)
    check(st == 200 and d["status"] == "ok" and d["index_uuid"] == s.uuid, "healthz: 200 ok with the uuid", d)
    st, b, _ = s.request("GET", "/info")
    d = json.loads(b)
    check(st == 200 and d["uuid"] == s.uuid and d["format"]["major"] == 1 and d["meta"]["pefa.n_passages"] == "5183"
          and d["model"]["dim"] == 100 and d["file_size"] == os.path.getsize(IDX), "info: format, uuid, size, META, counts", d)
    st, b, hdr = s.request("GET", "/metrics")
    text = b.decode()
    check(st == 200 and hdr.get("Content-Type", "").startswith("text/plain")
          and re.search(r'pefa_serve_requests_total\{status="200",mode="erm"\} \d+', text)
          and re.search(r'pefa_serve_search_duration_seconds_bucket\{mode="xl",le="\+Inf"\} [1-9]', text)
          # this request, and the one before it until its completion callback has run (it
          # may run after the client has its answer and sent this one): 1, sometimes 2
          and re.search(r"pefa_serve_in_flight [12]\n", text) and f'pefa_serve_index_info{{uuid="{s.uuid}"' in text
          and "pefa_serve_index_loaded_seconds" in text and 'pefa_serve_reloads_total{result="ok"} 0' in text,
          "metrics: requests by status and mode, latency histogram, in-flight, index, reloads",
          "\n".join(l for l in text.splitlines() if not l.startswith("#") and "_bucket" not in l))


def hammer(s, stop, results, seen):
    """one client thread: searches until stop is set; counts failures and uuids"""
    i = 0
    while not stop.is_set():
        try:
            st, d = s.search({"vector": ROWS[i % len(ROWS)], "k": 5, "mode": ("erm", "xs", "xl")[i % 3]}, timeout=30)
            if st == 200:
                seen.add(d["index_uuid"])
                results.append(d["hits"][0]["id"])
            else:
                results.append(("status", st, d))
        except Exception as e:  # noqa: BLE001 - every failure counts
            results.append(("exception", repr(e)))
        i += 1


def swap_in(src, live):
    """copy to a temporary name on the same filesystem, then rename over the live name"""
    tmp = live + ".incoming"
    shutil.copyfile(src, tmp)
    os.rename(tmp, live)


def wait_log(s, pattern, n, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if len(re.findall(pattern, s.text())) >= n:
            return True
        time.sleep(0.05)
    return False


def uuid_of(path):
    out = subprocess.run([os.path.join(BIN, "pefa-dump"), "--json", path], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)["uuid"]


def test_reload(s, a, b):
    ua, ub = uuid_of(a), uuid_of(b)
    stop, results, seen = threading.Event(), [], set()
    threads = [threading.Thread(target=hammer, args=(s, stop, results, seen)) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    reloads = 0
    for i in range(6):  # a rename every 0.4 s, alternating the two files; SIGHUP in between
        swap_in(b if i % 2 == 0 else a, IDX)
        reloads += 1
        wait_log(s, r" reload ", reloads)
        if i == 2:
            s.p.send_signal(signal.SIGHUP)
            reloads += 1
            wait_log(s, r" reload SIGHUP", 1)
        time.sleep(0.4)
    stop.set()
    for t in threads:
        t.join(60)
    fails = [r for r in results if isinstance(r, tuple)]
    check(len(results) > 50 and not fails, f"reload: {len(results)} requests under 7 reloads, 0 failed", fails[:3])
    check(seen <= {ua, ub} and len(seen) == 2, "reload: every answer names the old or the new index", seen)
    log = s.text()
    check(len(re.findall(r" reload file replaced: uuid=", log)) >= 6 and " reload SIGHUP: uuid=" in log,
          "reload: rename and SIGHUP logged", log[-600:])
    check(" unmap uuid=" in log, "reload: old mappings unmapped when their last request finished")
    st, b2, _ = s.request("GET", "/metrics")
    check(re.search(r'pefa_serve_reloads_total\{result="ok"\} [7-9]', b2.decode()) is not None, "metrics: reloads counted")


def test_refuse(s, good):
    st, d = s.search({"vector": ROWS[0]})
    before = d["index_uuid"]
    damaged = os.path.join(WORK, "damaged.pefa")
    shutil.copyfile(good, damaged)
    with open(damaged, "r+b") as f:  # a byte inside a section: open succeeds, verify fails
        f.seek(os.path.getsize(damaged) // 2)
        c = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([c[0] ^ 0x55]))
    n_refused = s.text().count(" refuse ")
    swap_in(damaged, IDX)
    ok = wait_log(s, r" refuse ", n_refused + 1)
    check(ok and "checksum" in s.text().split(" refuse ")[-1], "refuse: damaged file refused and logged",
          s.text()[-400:])
    st, d = s.search({"vector": ROWS[0]})
    check(st == 200 and d["index_uuid"] == before, "refuse: the old index keeps answering", (st, d.get("index_uuid")))
    time.sleep(0.5)  # polls again: the same refused file is not retried
    check(s.text().count(" refuse ") == n_refused + 1, "refuse: a refused file is not retried until it changes")
    s.p.send_signal(signal.SIGHUP)  # SIGHUP retries
    check(wait_log(s, r" refuse SIGHUP", 1), "refuse: SIGHUP retries and refuses again")
    truncated = os.path.join(WORK, "truncated.pefa")
    with open(good, "rb") as f, open(truncated, "wb") as g:
        g.write(f.read()[:-4096])
    swap_in(truncated, IDX)
    check(wait_log(s, r" refuse file replaced", 2), "refuse: truncated file refused")
    os.unlink(IDX)  # a missing file: keep serving, log nothing new
    time.sleep(0.3)
    st, d = s.search({"vector": ROWS[0]})
    check(st == 200 and d["index_uuid"] == before, "refuse: INDEX removed: still serving")
    st, b, _ = s.request("GET", "/healthz")
    check(st == 200, "refuse: healthz still 200")
    # contrib/pefa-deploy.sh: copy beside the live name, verify, rename
    deploy = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                          "contrib", "pefa-deploy.sh")
    env = dict(os.environ, PATH=BIN + ":" + os.environ["PATH"])
    r = subprocess.run(["bash", deploy, damaged, IDX], env=env, capture_output=True, text=True)
    check(r.returncode == 1 and "failed verification" in r.stderr and not os.path.exists(IDX)
          and ("FAILED" in r.stderr or "error" in r.stderr),
          "deploy script: a damaged index is not put in place, saying what failed", r.stderr)
    n_reloads = s.text().count(" reload file replaced")
    r = subprocess.run(["bash", deploy, good, IDX], env=env, capture_output=True, text=True)
    check(r.returncode == 0 and wait_log(s, r" reload file replaced", n_reloads + 1),
          "deploy script: a good index is verified, renamed in and reloaded", r.stderr)
    st, d = s.search({"vector": ROWS[0]})
    check(st == 200 and d["index_uuid"] == uuid_of(good), "refuse: a good file is taken again afterwards")
    check(not [f for f in os.listdir(WORK) if f.startswith(".pefa-deploy")], "deploy script: no temporary left")


DRAIN_BATCH = 1500


def test_drain():
    s = Server("--threads", "2", "--max-batch", "%d" % DRAIN_BATCH, "--max-body", "64M")
    rows = [ROWS[i % len(ROWS)] for i in range(DRAIN_BATCH)]
    # exact XL over every passage and every training query: ~1 ms a query
    slow = {"vectors": rows, "k": 10, "mode": "xl", "exact": True, "knn": 809, "topk_p": 5183}
    out = {}

    def run():
        out["t0"] = time.time()
        out["r"] = s.search(slow, timeout=300)
        out["t1"] = time.time()

    t = threading.Thread(target=run)
    t.start()
    deadline = time.time() + 30
    while time.time() < deadline:  # the request is in flight once /metrics counts 2 (itself and the slow one)
        st, b, _ = s.request("GET", "/metrics")
        if "pefa_serve_in_flight 2" in b.decode():
            break
        time.sleep(0.02)
    time.sleep(0.2)
    t_term = time.time()
    s.p.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    refused = False
    if "t1" not in out:
        try:
            socket.create_connection(("127.0.0.1", s.port), timeout=2).close()
        except OSError:
            refused = True
    still_running = "t1" not in out
    after = time.time() - t_term
    t.join(300)
    rc = s.stop(timeout=120)
    st, d = out.get("r", (0, {}))
    check(st == 200 and len(d.get("results", [])) == DRAIN_BATCH and all(len(r["hits"]) == 10 for r in d["results"]),
          f"drain: the slow request in flight at SIGTERM completed ({out.get('t1', 0) - out.get('t0', 0):.2f} s)",
          (st, str(d)[:200]))
    check(still_running, f"drain: it was still running {after:.2f} s after SIGTERM was sent "
          "(else this test proves less)")
    check(refused or not still_running, "drain: new connections refused while draining")
    check(rc == 0, "drain: exit status 0", rc)
    log = s.text()
    check(re.search(r" shutdown SIGTERM: no new connections; waiting for [1-9]", log) and " shutdown done" in log,
          "drain: logged", log[-300:])


def test_cli(s):
    exe = os.path.join(BIN, "pefa-serve")
    for args, want, words in [(["--help"], 0, "Usage: pefa-serve INDEX"), (["--version"], 0, "pefa-serve (pefa "),
                              ([], 2, "missing INDEX"), ([IDX, "--bogus"], 2, "unrecognized option"),
                              ([IDX, "--max-k", "0"], 2, "--max-k"), ([IDX, "--threads", "x"], 2, "--threads"),
                              ([os.path.join(WORK, "none.pefa"), "--listen", "127.0.0.1:0"], 1, "none.pefa"),
                              ([IDX, "--listen", "127.0.0.1:99999"], 1, "port '99999' is not 0..65535"),
                              ([IDX, "--listen", "8080"], 1, "expected HOST:PORT"),
                              ([IDX, "--listen", f"127.0.0.1:{s.port}"], 1, "cannot listen on")]:
        r = subprocess.run([exe, *args], capture_output=True, text=True, timeout=60)
        check(r.returncode == want and words in r.stdout + r.stderr, f"cli: pefa-serve {' '.join(args[1:] or args)} "
              f"-> exit {want}", (r.returncode, r.stdout[:200], r.stderr[:300]))

def test_k_echo():
    """"k" in an answer is the k searched with (the request's, else 10), not a hit count:
    an index of 30 passages asked for 50 answers "k":50 with 30 hits per query"""
    s = Server("--threads", "1", index=os.path.join(WORK, "small.pefa"))
    try:
        st, d = s.search({"vector": ROWS[0], "k": 50})
        check(st == 200 and d.get("k") == 50 and len(d.get("hits", [])) == 30,
              "k: 'k' echoes the k asked (50), 'hits' holds the 30 passages there are", (st, str(d)[:200]))
        st, d = s.search({"vectors": ROWS[:2], "k": 50})
        check(st == 200 and d.get("k") == 50 and [len(r["hits"]) for r in d.get("results", [])] == [30, 30],
              "k: batch: 'k' 50, 30 hits per query", (st, str(d)[:200]))
        st, d = s.search({"vector": ROWS[0]})
        check(st == 200 and d.get("k") == 10 and len(d.get("hits", [])) == 10, "k: absent: 'k' 10 (the default)",
              (st, str(d)[:200]))
    finally:
        check(s.stop() == 0, "k: shutdown exit 0")


def test_ip_overflow():
    """under --metric ip a query is used as given: one whose squared norm is no float32
    (values of 1e30) is a 400 naming the vector, not -inf/inf scores; cosine normalises it"""
    huge = [1e30] * len(ROWS[0])
    s = Server("--threads", "1", index=os.path.join(WORK, "small-ip.pefa"))
    try:
        st, d = s.search({"vector": huge})
        check(st == 400 and d.get("error", "").startswith("vector: query squared norm 1e+62 is over the float32"),
              "ip: a query of 1e30 -> 400 naming the vector", (st, d))
        st, d = s.search({"vectors": [ROWS[0], huge]})
        check(st == 400 and d.get("error", "").startswith("vectors[1]: query squared norm"),
              "ip: batch: the row named", (st, d))
    finally:
        check(s.stop() == 0, "ip: shutdown exit 0")
    s = Server("--threads", "1", index=os.path.join(WORK, "small.pefa"))
    try:
        st, d = s.search({"vector": huge})
        check(st == 200 and all(abs(h["score"]) <= 1.0001 for h in d.get("hits", [{"score": 9}])),
              "cosine: a query of 1e30 normalised: scores are cosines", (st, str(d)[:200]))
    finally:
        check(s.stop() == 0, "cosine: shutdown exit 0")


SET = os.path.join(WORK, "set.pefaset")


def test_set():
    """set-a / set-b: two builds (seeds 42 and 7) of 3 shards each (test_serve.sh)"""
    shutil.copyfile(os.path.join(WORK, "set-a.pefaset"), SET)
    ua, ub = uuid_of(os.path.join(WORK, "set-a.pefaset")), uuid_of(os.path.join(WORK, "set-b.pefaset"))
    s = Server("--threads", "2", "--max-batch", "100", "--poll-ms", "50", index=SET)
    try:
        check(s.uuid == ua, "set: index_uuid is the manifest's", (s.uuid, ua))
        k = 20
        for fields, flags in MODES[:4] + MODES[7:8]:
            ref = pefa_query(flags, k, SET)
            st, d = s.search({"vectors": ROWS[:100], "k": k, **fields})
            bad = [i for i in range(100 if st == 200 else 0) if
                   [h["id"] for h in d["results"][i]["hits"]] != [w["passage"] for w in ref[i]] or
                   max(abs(h["score"] - w["score"]) for h, w in zip(d["results"][i]["hits"], ref[i])) > 1e-6]
            check(st == 200 and not bad, f"set: answers {json.dumps(fields)} equal pefa-query on the set (100 queries)",
                  (st, bad[:5]))
        ref = pefa_query(["--mode", "xl", "--explain"], 5, SET)
        st, d = s.search({"vector": ROWS[3], "k": 5, "mode": "xl", "explain": True})
        check(st == 200 and [len(h["explain"]) for h in d["hits"]] == [len(w["explain"]) for w in ref[3]],
              "set: explain equals pefa-query --explain on the set", (st, str(d)[:200]))
        st, b, _ = s.request("GET", "/info")
        info = json.loads(b) if st == 200 else {}
        check(len(info.get("shards", [])) == 3 and info.get("uuid") == ua and
              sum(x["passages"] for x in info["shards"]) == info["model"]["n_passages"],
              "set: /info lists the 3 shards and the set's passages", str(info)[:300])
        stop, results, seen = threading.Event(), [], set()
        threads = [threading.Thread(target=hammer, args=(s, stop, results, seen)) for _ in range(3)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        for i in range(4):  # the manifests alternate; the shard files stay
            swap_in(os.path.join(WORK, "set-b.pefaset" if i % 2 == 0 else "set-a.pefaset"), SET)
            wait_log(s, r" reload ", i + 1)
            time.sleep(0.3)
        stop.set()
        for t in threads:
            t.join(60)
        fails = [r for r in results if isinstance(r, tuple)]
        check(len(results) > 20 and not fails, f"set: {len(results)} requests under 4 manifest renames, 0 failed",
              fails[:3])
        check(seen == {ua, ub}, "set: every answer names set a or set b", seen)
        # set b with a damaged shard: refused, set a keeps answering
        with open(os.path.join(WORK, "sb1.pefa"), "r+b") as f:
            f.seek(os.path.getsize(f.name) // 2)
            c = f.read(1)
            f.seek(-1, 1)
            f.write(bytes([c[0] ^ 0x55]))
        n = s.text().count(" refuse ")
        swap_in(os.path.join(WORK, "set-b.pefaset"), SET)
        ok = wait_log(s, r" refuse ", n + 1)
        check(ok and "sb1.pefa" in s.text().split(" refuse ")[-1], "set: a damaged shard is refused, the file named",
              s.text()[-400:])
        st, d = s.search({"vector": ROWS[0]})
        check(st == 200 and d["index_uuid"] == ua, "set: the old set keeps answering", (st, d.get("index_uuid")))
    finally:
        check(s.stop() == 0, "set: shutdown exit 0")


def main():
    shutil.copyfile(os.path.join(WORK, "a.pefa"), IDX)
    s = Server("--threads", "2", "--max-k", "100", "--max-batch", "4", "--max-body", "64K", "--timeout-ms", "1000",
               "--poll-ms", "50")
    try:
        test_cli(s)
        test_bad_inputs(s)
    finally:
        check(s.stop() == 0, "shutdown after bad inputs: exit 0")
    s = Server("--threads", "2", "--max-batch", "100", "--poll-ms", "50")
    try:
        test_answers(s)
        test_info(s)
        test_reload(s, os.path.join(WORK, "a.pefa"), os.path.join(WORK, "b.pefa"))
        test_refuse(s, os.path.join(WORK, "a.pefa"))
    finally:
        check(s.stop() == 0, "shutdown: exit 0")
    test_k_echo()
    test_ip_overflow()
    shutil.copyfile(os.path.join(WORK, "a.pefa"), IDX)
    test_drain()
    test_set()
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


main()
