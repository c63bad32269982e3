"""Embedding a collection on a Dask cluster (``distributed``): the same code on a laptop's LocalCluster and
on hundreds of workers (dask-kubernetes, dask-jobqueue for SLURM/PBS, YARN).

    from distributed import Client, LocalCluster
    import mmx.dask
    client = Client(LocalCluster(n_workers=2, threads_per_worker=1))
    result = mmx.dask.embed(paths, "openai/clip-vit-base-patch32", client, out="embeddings/")
    result.embeddings      # (len(paths), 512) float32, row i = paths[i]

Each worker loads the model once (a worker plugin); the inputs are cut into partitions of about equal bytes
(file sizes; text lengths); each partition's task writes one shard (``shard-NNNNN.npy`` + ``.json`` with the
inputs' positions), atomically, so a partition run twice — its worker killed and the task retried by Dask —
leaves one shard. The merge places every row by position and fails unless each input is there exactly once;
it writes ``embeddings.npy`` and ``paths.txt`` (``texts.jsonl`` for texts): what numpy, FAISS and
``mmx index --import`` read. ``out`` must be a folder every worker and the client see (on a cluster: a shared
file system).
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
import tempfile
import uuid
from collections import namedtuple

import numpy as np
from distributed import WorkerPlugin, get_worker, wait

import mmx

__all__ = ["EmbedResult", "ModelPlugin", "embed", "merge_shards", "partition"]

EmbedResult = namedtuple("EmbedResult", "embeddings inputs out")


class ModelPlugin(WorkerPlugin):
    """Loads one mmx embedder per worker process, when the worker starts (or the plugin is registered),
    and keeps it for every task: ``get_worker().plugins[name].embedder``."""

    def __init__(self, model, kind, device="cpu", dtype=None, threads=None):
        self.model, self.kind, self.device, self.dtype, self.threads = os.fspath(model), kind, device, dtype, threads
        self.embedder = None
        self.loads = 0  # per process: 1 once set up

    def setup(self, worker):
        if self.threads:  # Dask's nanny sets OMP_NUM_THREADS=1, which mmx follows unless told
            mmx.set_num_threads(self.threads)
        cls = mmx.ImageEmbedder if self.kind == "image" else mmx.TextEmbedder
        self.embedder = cls(self.model, self.device, self.dtype)
        self.loads += 1

    def teardown(self, worker):
        self.embedder = None


def partition(sizes, count):
    """Cuts positions 0..len(sizes)-1, in order, into at most ``count`` contiguous runs of about equal total
    size (each run at least one input): the partitions."""
    n = len(sizes)
    count = max(1, min(int(count), n))
    cumulative = np.cumsum(np.asarray(sizes, dtype=np.float64) + 1.0)  # +1: empty files still cost a task's share
    bounds = np.searchsorted(cumulative, cumulative[-1] * np.arange(1, count) / count, side="right")
    edges = sorted(set([0, *bounds.tolist(), n]))
    return [(a, b) for a, b in zip(edges, edges[1:]) if b > a]


def _shard_name(out, index):
    return os.path.join(out, f"shard-{index:05d}")


def _write_atomically(path, write):
    tmp = f"{path}.tmp-{os.getpid()}"
    write(tmp)
    os.replace(tmp, path)


def _embed_partition(index, begin, items, plugin_name, out, options):
    """One partition's task: embed its inputs with the worker's model and write its shard."""
    worker = get_worker()
    plugin = worker.plugins[plugin_name]
    embeddings = plugin.embedder.encode(items, **options)
    base = _shard_name(out, index)
    positions = list(range(begin, begin + len(items)))
    # The positions file names the rows; the .npy, written last, marks the shard complete.
    _write_atomically(base + ".json", lambda p: _dump_json(p, {"positions": positions, "pid": os.getpid(),
                                                                "loads": plugin.loads}))
    _write_atomically(base + ".npy", lambda p: _save_npy(p, embeddings))
    return {"index": index, "rows": len(items), "pid": os.getpid(), "loads": plugin.loads,
            "worker": worker.address}


def _dump_json(path, doc):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f)


def _write_text(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def _save_npy(path, array):
    with open(path, "wb") as f:
        np.save(f, array)


def merge_shards(out, count, inputs, kind):
    """The shards of ``out`` as one (count, dimension) array in input order; an input missing or present twice
    is an error naming it. Writes ``embeddings.npy`` and ``paths.txt`` / ``texts.jsonl`` into ``out``."""
    merged, seen = None, np.zeros(count, dtype=np.int64)
    for npy in sorted(glob.glob(os.path.join(glob.escape(out), "shard-[0-9][0-9][0-9][0-9][0-9].npy"))):
        with open(npy[:-4] + ".json", encoding="utf-8") as f:
            positions = np.asarray(json.load(f)["positions"], dtype=np.int64)
        rows = np.load(npy)
        if rows.shape[0] != positions.size:
            raise mmx.RuntimeError(f"{npy}: {rows.shape[0]} rows for {positions.size} positions")
        if merged is None:
            merged = np.empty((count, rows.shape[1]), dtype=rows.dtype)
        merged[positions] = rows
        np.add.at(seen, positions, 1)
    bad = np.flatnonzero(seen != 1)
    if merged is None or bad.size:
        first = int(bad[0]) if bad.size else 0
        raise mmx.RuntimeError(f"the shards in {out} hold input {first} ({inputs[first]!r}) {int(seen[first])} times"
                               f" ({bad.size} inputs not exactly once)")
    _write_atomically(os.path.join(out, "embeddings.npy"), lambda p: _save_npy(p, merged))
    if kind == "image":
        _write_atomically(os.path.join(out, "paths.txt"), lambda p: _write_text(p, "".join(f"{x}\n" for x in inputs)))
    else:
        _write_atomically(os.path.join(out, "texts.jsonl"),
                          lambda p: _write_text(p, "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in inputs)))
    return merged


def embed(inputs, model, client, out=None, kind=None, partitions=None, batch_size=32, pooling=None,
          normalize=False, device="cpu", dtype=None, threads=None, retries=2, timeout=None):
    """Embeds ``inputs`` (image paths, or texts) with ``model`` on the Dask ``client``'s workers.

    ``kind``: "image" or "text" (default: images when every input is an existing file). ``partitions``:
    how many tasks (default: 4 per worker thread, at least one per 256 MiB of images). ``threads``: the
    engine's threads per worker (default: Dask's OMP_NUM_THREADS, 1). ``retries``: Dask's retries of a
    partition that raised (a killed worker's partitions are rescheduled by Dask itself). Returns
    ``EmbedResult(embeddings, inputs, out)``, row i the embedding of inputs[i].
    """
    inputs = [os.fspath(x) if isinstance(x, os.PathLike) else x for x in inputs]
    if not inputs:
        raise mmx.UsageError("no inputs to embed")
    if kind is None:
        kind = "image" if all(isinstance(x, str) and os.path.isfile(x) for x in inputs) else "text"
    if kind not in ("image", "text"):
        raise mmx.UsageError(f"kind {kind!r}: choose 'image' or 'text'")
    if kind == "image":
        inputs = [os.path.abspath(x) for x in inputs]  # workers may run elsewhere: no relative paths
        sizes = [os.path.getsize(x) for x in inputs]
    else:
        for i, t in enumerate(inputs):
            if not isinstance(t, str):
                raise TypeError(f"inputs[{i}] is {type(t).__name__}, not str")
        sizes = [len(t.encode("utf-8")) for t in inputs]
    out = tempfile.mkdtemp(prefix="mmx-dask-") if out is None else os.path.abspath(os.fspath(out))
    os.makedirs(out, exist_ok=True)
    for stale in glob.glob(os.path.join(glob.escape(out), "shard-*")):
        os.remove(stale)  # shards of an earlier run would count twice
    if partitions is None:
        worker_threads = sum(client.nthreads().values()) or 1
        partitions = max(4 * worker_threads, int(sum(sizes) // (256 << 20)) + 1)
    runs = partition(sizes, partitions)

    plugin = ModelPlugin(model, kind, device, dtype, threads)
    name = "mmx-" + hashlib.sha256(json.dumps([plugin.model, kind, device, dtype, threads]).encode()).hexdigest()[:16]
    client.register_worker_plugin(plugin, name=name)
    run_id = uuid.uuid4().hex[:12]
    options = {"batch_size": batch_size, "pooling": pooling, "normalize": normalize}
    futures = [client.submit(_embed_partition, i, a, inputs[a:b], name, out, options, key=f"{name}-{run_id}-{i}",
                             retries=retries, pure=False)
               for i, (a, b) in enumerate(runs)]
    wait(futures, timeout=timeout)
    client.gather(futures)  # raises the first partition's error, if one failed for good
    embeddings = merge_shards(out, len(inputs), inputs, kind)
    return EmbedResult(embeddings, inputs, out)
