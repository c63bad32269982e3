"""mmx.dask on a LocalCluster of two worker processes: 2000 photos embedded, merged equal to one process's
result, each worker loading the model once, and a worker killed mid-run without losing or doubling an input."""
import glob
import json
import os
import signal
import tempfile
import threading
import time
import unittest

import numpy as np

import mmx
from common import model
from photos import make_photos

try:
    from distributed import Client, LocalCluster
    import mmx.dask
except ImportError:  # python3-distributed not installed
    Client = None

COUNT = 2000


@unittest.skipIf(Client is None, "python3-distributed is not installed")
class DaskTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="mmx-dask-test-")
        cls.paths = make_photos(os.path.join(cls.tmp.name, "photos"), COUNT)
        cls.reference = mmx.ImageEmbedder(model("vit-tiny")).encode(cls.paths)  # one process, one call
        cls.cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                   silence_logs=40)
        cls.client = Client(cls.cluster)

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        cls.cluster.close()
        cls.tmp.cleanup()

    def shards(self, out):
        docs = []
        for path in sorted(glob.glob(os.path.join(out, "shard-*.json"))):
            with open(path) as f:
                docs.append(json.load(f))
        return docs

    def test_the_merged_result_equals_one_process(self):
        out = os.path.join(self.tmp.name, "run")
        result = mmx.dask.embed(self.paths, model("vit-tiny"), self.client, out=out, timeout=300)
        self.assertEqual(result.embeddings.shape, (COUNT, 32))
        np.testing.assert_array_equal(result.embeddings, self.reference)
        np.testing.assert_array_equal(np.load(os.path.join(out, "embeddings.npy")), self.reference)
        with open(os.path.join(out, "paths.txt")) as f:
            self.assertEqual(f.read().splitlines(), self.paths)
        shards = self.shards(out)
        self.assertEqual(len(shards), 8)  # 4 per worker thread
        self.assertEqual(sorted(p for s in shards for p in s["positions"]), list(range(COUNT)))
        self.assertEqual({s["loads"] for s in shards}, {1})  # every worker process loaded the model once
        self.assertEqual(len({s["pid"] for s in shards}), 2)  # and both worked

    def test_texts_too(self):
        texts = [f"caption {i}: {'a cat ' * (i % 7)}on a mat" for i in range(300)]
        result = mmx.dask.embed(texts, model("bert-tiny"), self.client, partitions=5, timeout=300)
        # Each partition's texts are padded in their own passes: bit for bit the partitions embedded one by
        # one, and within float rounding the texts embedded in one call.
        bert = mmx.TextEmbedder(model("bert-tiny"))
        runs = mmx.dask.partition([len(t.encode()) for t in texts], 5)
        self.assertEqual(len(runs), 5)
        np.testing.assert_array_equal(result.embeddings, np.concatenate([bert.encode(texts[a:b]) for a, b in runs]))
        np.testing.assert_allclose(result.embeddings, bert.encode(texts), rtol=0, atol=1e-6)
        with open(os.path.join(result.out, "texts.jsonl")) as f:
            self.assertEqual([json.loads(line) for line in f], texts)

    def test_a_killed_worker_loses_and_doubles_nothing(self):
        out = os.path.join(self.tmp.name, "killed")
        pids = self.client.run(os.getpid)
        outcome = {}

        def run():
            try:
                outcome["result"] = mmx.dask.embed(self.paths, model("vit-tiny"), self.client, out=out,
                                                   partitions=16, timeout=300)
            except Exception as e:  # reported below
                outcome["error"] = e
        thread = threading.Thread(target=run)
        thread.start()
        deadline = time.monotonic() + 120
        while not glob.glob(os.path.join(out, "shard-*.npy")) and time.monotonic() < deadline:
            time.sleep(0.05)  # the first partition is written: the run is under way
        busy = [a for a, keys in self.client.processing().items() if keys]
        self.assertTrue(busy, "no worker was busy")
        victim = pids[busy[0]]
        os.kill(victim, signal.SIGKILL)
        thread.join(timeout=300)
        self.assertFalse(thread.is_alive(), "the run did not end")
        self.assertNotIn("error", outcome, outcome.get("error"))
        np.testing.assert_array_equal(outcome["result"].embeddings, self.reference)
        shards = self.shards(out)
        self.assertEqual(sorted(p for s in shards for p in s["positions"]), list(range(COUNT)))
        # The nanny replaced the killed process (and the plugin loaded the model there too).
        self.client.wait_for_workers(2, timeout=60)
        after = self.client.run(os.getpid)
        self.assertNotIn(victim, after.values())
        self.assertEqual(len(after), 2)


if __name__ == "__main__":
    unittest.main()
