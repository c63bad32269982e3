#!/usr/bin/python3
"""Checks that mmx and Python's huggingface_hub share one cache, in both directions (never built, never required):

1. a local Hub stand-in (this script, http.server) serves tests/data/models/bert-tiny as org/bert-tiny;
2. `mmx download org/bert-tiny` fills cache A; huggingface_hub reads it offline (snapshot_download and
   hf_hub_download with local_files_only=True, scan_cache_dir);
3. huggingface_hub's snapshot_download fills cache B from the same stand-in; `HF_HUB_OFFLINE=1 mmx embed
   --model org/bert-tiny` runs from it, with the same output as from the folder.

    PYTHONPATH=/path/to/huggingface_hub/src /usr/bin/python3 tools/check_hf_cache_interop.py build/release/mmx
(Debian 12 packages huggingface_hub's dependencies: python3-requests, -filelock, -tqdm, -yaml, -packaging, -fsspec.)
"""
import hashlib
import http.server
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import threading

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODEL = ROOT / "tests/data/models/bert-tiny"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
FILES = {p.name: p.read_bytes() for p in MODEL.iterdir()}


def is_lfs(name):
    return name.endswith(".safetensors")


class Hub(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def send(self, status, headers, body=b""):
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        path = self.path.split("?")[0]
        if path.startswith("/api/models/org/bert-tiny"):
            body = json.dumps({"id": "org/bert-tiny", "sha": COMMIT,
                               "siblings": [{"rfilename": n} for n in FILES]}).encode()
            return self.send(200, {"Content-Type": "application/json"}, body)
        if path.startswith("/cdn/"):
            for name, data in FILES.items():
                if hashlib.sha256(data).hexdigest() == path[5:]:
                    return self.send(200, {"ETag": '"%s"' % path[5:]}, data)
            return self.send(404, {})
        prefix = "/org/bert-tiny/resolve/"
        if path.startswith(prefix):
            name = path[len(prefix):].split("/", 1)[1]
            if name not in FILES:
                return self.send(404, {"X-Error-Code": "EntryNotFound"})
            data = FILES[name]
            if is_lfs(name):
                sha = hashlib.sha256(data).hexdigest()
                # Absolute, as the Hub's CDN links are (huggingface_hub follows only relative redirects in HEAD).
                host = "http://%s:%d" % self.server.server_address
                return self.send(302, {"Location": host + "/cdn/" + sha, "X-Repo-Commit": COMMIT,
                                       "X-Linked-Etag": '"%s"' % sha, "X-Linked-Size": str(len(data))})
            etag = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
            return self.send(200, {"X-Repo-Commit": COMMIT, "ETag": '"%s"' % etag}, data)
        self.send(404, {})


def main():
    mmx = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build/release/mmx")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = "http://127.0.0.1:%d" % server.server_port
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, HF_ENDPOINT=endpoint)
        env.pop("HF_HUB_OFFLINE", None)
        # 1. mmx writes, Python reads.
        cache_a = os.path.join(tmp, "a")
        out = subprocess.run([mmx, "download", "org/bert-tiny"], env=dict(env, HF_HUB_CACHE=cache_a),
                             capture_output=True, text=True, check=True).stdout.strip()
        print("mmx download ->", out)
        os.environ.update(HF_HUB_CACHE=cache_a, HF_ENDPOINT=endpoint, HF_HUB_OFFLINE="1")
        import huggingface_hub
        from huggingface_hub import constants, hf_hub_download, scan_cache_dir, snapshot_download
        constants.HF_HUB_CACHE = cache_a
        constants.HF_HUB_OFFLINE = True
        snap = snapshot_download("org/bert-tiny", cache_dir=cache_a, local_files_only=True)
        assert snap == out, (snap, out)
        f = hf_hub_download("org/bert-tiny", "model.safetensors", cache_dir=cache_a, local_files_only=True)
        assert pathlib.Path(f).read_bytes() == FILES["model.safetensors"]
        info = scan_cache_dir(cache_a)
        repo = next(iter(info.repos))
        assert repo.repo_id == "org/bert-tiny" and not info.warnings, info.warnings
        print("huggingface_hub %s reads mmx's cache offline: %d files, %d bytes, refs %s" % (
            huggingface_hub.__version__, repo.nb_files, repo.size_on_disk, sorted(repo.refs)))
        # 2. Python writes, mmx reads.
        cache_b = os.path.join(tmp, "b")
        constants.HF_HUB_OFFLINE = False
        os.environ.pop("HF_HUB_OFFLINE")
        snap_b = snapshot_download("org/bert-tiny", cache_dir=cache_b, endpoint=endpoint)
        print("huggingface_hub snapshot_download ->", snap_b)
        def run(model, out):
            r = subprocess.run([mmx, "embed", "--model", model, "--text", "hello world", "--output", out],
                               env=dict(env, HF_HUB_CACHE=cache_b, HF_HUB_OFFLINE="1"), capture_output=True, text=True)
            assert r.returncode == 0, r.stderr
            return "\n".join(l for l in pathlib.Path(out).read_text().splitlines() if '"model"' not in l)
        a = run("org/bert-tiny", os.path.join(tmp, "a.json"))
        assert a == run(str(MODEL), os.path.join(tmp, "b.json")), "outputs differ"
        print("mmx reads huggingface_hub's cache offline: same embedding as from the folder")
    server.shutdown()


if __name__ == "__main__":
    main()
