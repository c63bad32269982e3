"""mmx.dask.embed's throughput on a LocalCluster: images per second for worker layouts, median of --runs
runs after a warm-up run (which loads the model on every worker).

  PYTHONPATH=build/release/python python3 python/bench/dask_throughput.py [--images 2000] [--model tests/data/models/vit-tiny]
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

from distributed import Client, LocalCluster

import mmx
import mmx.dask

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from photos import make_photos  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tests/data/models/vit-tiny")
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--layouts", default="1x1,1x2,2x1", help="WORKERSxENGINE_THREADS, comma-separated")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mmx-dask-bench-") as tmp:
        paths = make_photos(os.path.join(tmp, "photos"), args.images)
        start = time.perf_counter()
        mmx.ImageEmbedder(args.model).encode(paths)
        print(f"{args.images} images, one process (engine threads {mmx.num_threads()}): "
              f"{args.images / (time.perf_counter() - start):.0f} images/s")
        for layout in args.layouts.split(","):
            workers, threads = (int(x) for x in layout.split("x"))
            with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                              silence_logs=40) as cluster, Client(cluster) as client:
                def run():
                    mmx.dask.embed(paths, args.model, client, out=os.path.join(tmp, "out"), threads=threads)
                run()  # warm-up: the plugin loads the model on each worker
                times = []
                for _ in range(args.runs):
                    t = time.perf_counter()
                    run()
                    times.append(time.perf_counter() - t)
                med = statistics.median(times)
                print(f"{workers} worker(s) x {threads} engine thread(s): {args.images / med:.0f} images/s "
                      f"(median {med:.2f} s, runs {', '.join(f'{x:.2f}' for x in times)})")


if __name__ == "__main__":
    main()
