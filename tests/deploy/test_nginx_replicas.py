#!/usr/bin/python3
"""deploy/nginx/mmx.conf exercised: two `mmx serve` replicas on 127.0.0.1 behind nginx, requests from
8 clients, one replica killed (SIGKILL) mid-run; every request must still be answered 200 (nginx retries
on the other), and both replicas must have served before the kill. Exit 77 (skipped) without nginx.

  test_nginx_replicas.py MMX_BINARY REPO_ROOT
"""
import json, os, re, shutil, signal, socket, subprocess, sys, tempfile, threading, time, urllib.request

mmx, root = sys.argv[1], sys.argv[2]
nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
if not nginx:
    print("nginx is not installed: skipped")
    sys.exit(77)
work = tempfile.mkdtemp(prefix="mmx-nginx-")
procs = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def replica():
    log = open(os.path.join(work, f"replica{len(procs)}.log"), "w+")
    p = subprocess.Popen([mmx, "serve", "--model", "bert=" + os.path.join(root, "tests/data/models/bert-tiny"), "--port", "0"],
                         stderr=log, stdout=subprocess.DEVNULL)
    procs.append(p)
    for _ in range(300):
        time.sleep(0.05)
        m = re.search(r"127\.0\.0\.1:(\d+)", open(log.name).read())
        if m:
            return p, int(m.group(1))
    sys.exit("a replica did not start: " + open(log.name).read())


def get(url, body=None):
    req = urllib.request.Request(url, data=json.dumps(body).encode() if body else None,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError as e:
        return -1, str(e).encode()


try:
    (first, port1), (second, port2) = replica(), replica()
    # Each replica answers /ready once its model is loaded. Until then nginx's first request to it gets a
    # 503, which (max_fails=1) takes it out of the upstream for fail_timeout: both must be ready first.
    for port in (port1, port2):
        for _ in range(600):
            if get(f"http://127.0.0.1:{port}/ready")[0] == 200:
                break
            time.sleep(0.05)
        else:
            sys.exit(f"the replica on port {port} never became ready")
    front = free_port()
    conf = open(os.path.join(root, "deploy/nginx/mmx.conf")).read()
    conf = conf.replace("127.0.0.1:8081", f"127.0.0.1:{port1}").replace("127.0.0.1:8082", f"127.0.0.1:{port2}")
    conf = conf.replace("listen 127.0.0.1:8080", f"listen 127.0.0.1:{front}")
    open(os.path.join(work, "mmx.conf"), "w").write(conf)
    temp = "".join(f"{k}_temp_path {work}/{k};\n" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    open(os.path.join(work, "nginx.conf"), "w").write(
        ("user root;\n" if os.geteuid() == 0 else "") +
        f"worker_processes 1;\npid {work}/nginx.pid;\nerror_log {work}/error.log;\ndaemon off;\n"
        f"events {{ worker_connections 256; }}\n"
        f"http {{\naccess_log off;\nclient_body_buffer_size 1m;\n{temp}include {work}/mmx.conf;\n}}\n")
    nginx_proc = subprocess.Popen([nginx, "-p", work, "-c", os.path.join(work, "nginx.conf"), "-e", os.path.join(work, "error.log")],
                                  stderr=subprocess.STDOUT, stdout=open(os.path.join(work, "nginx.out"), "w"))
    procs.append(nginx_proc)
    url = f"http://127.0.0.1:{front}"
    for _ in range(100):
        if get(url + "/ready")[0] == 200:
            break
        time.sleep(0.05)
    else:
        sys.exit("nginx did not answer: " + open(os.path.join(work, "error.log")).read())

    total, killed_at = 400, 150
    statuses, lock, done = [], threading.Lock(), [0]

    def client(n):
        for i in range(n):
            status, body = get(url + "/v1/embeddings", {"model": "bert", "input": [f"text {i}", "rock statue"]})
            with lock:
                statuses.append((status, body[:200]))
                done[0] += 1

    threads = [threading.Thread(target=client, args=(total // 8,)) for _ in range(8)]
    for t in threads:
        t.start()
    while done[0] < killed_at:
        time.sleep(0.005)
    served = []
    for port in (port1, port2):
        m = get(f"http://127.0.0.1:{port}/metrics")[1].decode()
        served.append(sum(float(v) for v in re.findall(r'mmx_requests_total\{route="/v1/embeddings",status="200"\} (\S+)', m)))
    first.send_signal(signal.SIGKILL)
    for t in threads:
        t.join()
    failed = [s for s in statuses if s[0] != 200]
    print(f"{len(statuses)} requests through nginx, replica 1 killed after {killed_at}; before the kill the replicas "
          f"had served {served[0]:.0f} and {served[1]:.0f}; failed: {len(failed)}")
    if failed:
        print("failures:", failed[:5])
        sys.exit(1)
    if min(served) == 0:
        sys.exit("one replica served nothing before the kill: the balancing does not work")
finally:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
    shutil.rmtree(work, ignore_errors=True)
