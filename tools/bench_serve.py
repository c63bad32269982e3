#!/usr/bin/python3
"""Load test of `mmx serve` on 127.0.0.1 with `hey` (Debian's package), bounded in time.

Starts the server on a free port with full-size random-weight models (written once by
`mmx bench --write-random`), then for each scenario and concurrency runs `hey -z SECONDS -c C -o csv`
and reports requests/s, p50/p99 latency, statuses, and the batch sizes the queue formed (from /metrics).
Then an overload run (4x the concurrency limit) and an optional soak (RSS at start and end).

  tools/bench_serve.py [--mmx build/release/mmx] [--seconds 10] [--concurrency 1,8,64]
                       [--scenarios lab,short,images] [--overload] [--soak SECONDS] [--threads N]
"""
import argparse, base64, csv, io, json, os, re, signal, subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAB = ["Cat with paint", "rock statue", "frogs on leaf", "jellyfish",
       "Cats don't usually", "like water", "but this one likes paint", "quite a lot"]


def model_folder(mmx, name, cache):
    path = os.path.join(cache, name)
    if not os.path.exists(os.path.join(path, "model.safetensors")):
        subprocess.run([mmx, "bench", "--write-random", f"{name}={path}", "--data", os.path.join(ROOT, "tests/data")],
                       check=True, stdout=subprocess.DEVNULL)
    return path


def start_server(mmx, models, extra):
    args = [mmx, "serve", "--port", "0", "--log-format", "json"] + extra
    for name, path in models.items():
        args += ["--model", f"{name}={path}"]
    log = tempfile.NamedTemporaryFile("w+", delete=False, prefix="mmx-serve-", suffix=".log")
    proc = subprocess.Popen(args, stderr=log, stdout=subprocess.DEVNULL)
    for _ in range(600):
        time.sleep(0.1)
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", open(log.name).read())
        if m:
            return proc, int(m.group(1)), log.name
        if proc.poll() is not None:
            sys.exit("mmx serve failed:\n" + open(log.name).read())
    proc.kill()
    sys.exit("mmx serve did not start in 60 s")


def metrics(port):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def hey(port, path, body, concurrency, seconds, qps_per_client=0):
    with tempfile.NamedTemporaryFile("w", delete=False, suffix=".json") as f:
        json.dump(body, f)
    rate = ["-q", f"{qps_per_client:.3f}"] if qps_per_client else []
    out = subprocess.run(["hey", "-z", f"{seconds}s", "-c", str(concurrency), *rate, "-m", "POST", "-T", "application/json",
                          "-D", f.name, "-t", "60", "-o", "csv", f"http://127.0.0.1:{port}{path}"],
                         capture_output=True, text=True, timeout=seconds + 120)
    os.unlink(f.name)
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    return rows


def summarize(rows, seconds):
    ok = [float(r["response-time"]) * 1e3 for r in rows if r["status-code"] == "200"]
    statuses = {}
    for r in rows:
        statuses[r["status-code"]] = statuses.get(r["status-code"], 0) + 1
    ok.sort()
    pct = lambda p: ok[min(len(ok) - 1, int(p * len(ok)))] if ok else float("nan")
    return {"requests": len(rows), "rps": len(ok) / seconds, "p50_ms": pct(0.50), "p99_ms": pct(0.99),
            "statuses": statuses}


def batch_stats(before, after, model):
    key = lambda s: f'mmx_batch_size_{s}{{model="{model}"}}'
    n = after.get(key("count"), 0) - before.get(key("count"), 0)
    inputs = after.get(key("sum"), 0) - before.get(key("sum"), 0)
    return (inputs / n if n else 0.0), int(n)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mmx", default=os.path.join(ROOT, "build/release/mmx"))
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--concurrency", default="1,8,64")
    ap.add_argument("--scenarios", default="lab,short,images")
    ap.add_argument("--overload", action="store_true")
    ap.add_argument("--soak", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--cache", default="/tmp/mmx-serve-models")
    a = ap.parse_args()
    os.makedirs(a.cache, exist_ok=True)
    models = {"bert": model_folder(a.mmx, "bert-base-uncased", a.cache)}
    scenarios = a.scenarios.split(",")
    if "images" in scenarios:
        models["clip"] = model_folder(a.mmx, "clip-vit-base-patch32", a.cache)
    extra = ["--threads", str(a.threads)] if a.threads else []
    photo = open(os.path.join(ROOT, "tests/data/images/chelsea.png"), "rb").read()
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(photo).decode()}}
    bodies = {
        "lab": ("/v1/embeddings", "bert", {"model": "bert", "input": LAB}),
        "short": ("/v1/embeddings", "bert", {"model": "bert", "input": "A tabby cat"}),
        "images": ("/v1/embeddings", "clip", {"model": "clip", "input": [image] * 4}),
    }
    proc, port, log = start_server(a.mmx, models, extra)
    print(f"mmx serve on 127.0.0.1:{port}, threads {a.threads or 'default'}, {a.seconds} s per run (hey)")
    try:
        sustainable = 0
        for s in scenarios:
            path, model, body = bodies[s]
            for c in map(int, a.concurrency.split(",")):
                before = metrics(port)
                r = summarize(hey(port, path, body, c, a.seconds), a.seconds)
                if s == "short":
                    sustainable = max(sustainable, r["rps"])
                mean_batch, batches = batch_stats(before, metrics(port), model)
                print(f"{s:7s} c={c:<3d} {r['rps']:8.1f} req/s  p50 {r['p50_ms']:8.1f} ms  p99 {r['p99_ms']:8.1f} ms  "
                      f"batches {batches:5d} (mean {mean_batch:5.1f} inputs)  statuses {r['statuses']}", flush=True)
        if a.overload:
            # Offered at 4x the best rate measured for single short texts, by 128 clients at a fixed rate
            # each (open loop: a refused client does not retry at once), against a limit of 32 in flight.
            sustainable = sustainable or 200.0
            proc.send_signal(signal.SIGTERM); proc.wait()
            proc, port, log = start_server(a.mmx, models, extra + ["--max-concurrent-requests", "32"])
            path, model, body = bodies["short"]
            r = summarize(hey(port, path, body, 128, a.seconds, 4 * sustainable / 128), a.seconds)
            total = r["requests"]
            print(f"overload: {4 * sustainable:.0f} req/s offered (4x {sustainable:.0f}) by 128 clients, limit 32 in flight: "
                  f"{r['statuses']}; {100.0 * r['statuses'].get('429', 0) / max(total, 1):.1f} % answered 429, "
                  f"served {r['rps']:.1f} req/s, p50 {r['p50_ms']:.1f} ms, p99 of served {r['p99_ms']:.1f} ms")
        if a.soak:
            path, model, body = bodies["short"]
            rss0 = metrics(port)["process_resident_memory_bytes"]
            r = summarize(hey(port, path, body, 8, a.soak), a.soak)
            rss1 = metrics(port)["process_resident_memory_bytes"]
            print(f"soak {a.soak} s at c=8: {r['rps']:.1f} req/s, statuses {r['statuses']}, RSS {rss0 / 2**20:.1f} -> "
                  f"{rss1 / 2**20:.1f} MiB ({100.0 * (rss1 - rss0) / rss0:+.1f} %)")
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        print(f"SIGTERM: exit {code}")
        os.unlink(log)


if __name__ == "__main__":
    main()
