"""What the Python module adds to the engine, and whether threads overlap (the GIL released).

  PYTHONPATH=build/release/python python3 python/bench/overhead.py [--model tests/data/models/bert-tiny] [--runs 2000]

1. encode() of one short text through Python vs the same call timed inside C++ (median of --runs each);
2. 8 Python threads each encoding --texts texts, concurrently vs one after another (median of 3).
"""
import argparse
import statistics
import threading
import time

import mmx


def median_seconds(f, runs):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tests/data/models/bert-tiny")
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=0, help="the engine's threads (0: its default)")
    parser.add_argument("--texts", type=int, default=64, help="texts per call in the threads part")
    args = parser.parse_args()
    if args.threads:
        mmx.set_num_threads(args.threads)
    model = mmx.TextEmbedder(args.model)
    text = ["a cat on a mat"]
    for _ in range(50):
        model.encode(text)  # warm: packed weights, caches
    engine = model._native.median_engine_seconds(text, args.runs)
    python = median_seconds(lambda: model.encode(text), args.runs)
    print(f"{model.description}; engine threads {mmx.num_threads()}")
    print(f"one text: engine {engine * 1e6:.1f} us, through Python {python * 1e6:.1f} us, "
          f"added {(python - engine) * 1e6:.1f} us (median of {args.runs})")

    batches = [[f"sentence {i} of thread {t}, about cats and mats" for i in range(args.texts)] for t in range(8)]

    def sequential():
        for b in batches:
            model.encode(b)

    def concurrent():
        threads = [threading.Thread(target=model.encode, args=(b,)) for b in batches]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    seq = median_seconds(sequential, 3)
    con = median_seconds(concurrent, 3)
    print(f"8 threads x {args.texts} texts: sequential {seq * 1e3:.1f} ms, concurrent {con * 1e3:.1f} ms "
          f"({seq / con:.2f}x)")


if __name__ == "__main__":
    main()
