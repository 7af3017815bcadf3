"""Compare two checkouts of cnncompile side by side: the same models, inputs and thread
counts, each checkout compiled and timed in its own worker process, the two taking turns.

    python benchmarks/compare.py OLD_CHECKOUT NEW_CHECKOUT
    python benchmarks/compare.py ../old . --models resnet18,mobilenet_v2 --batch 1,32 --threads 1,2

A checkout is a directory holding cnncompile/ (e.g. `git worktree add ../old <commit>`). Per
model, batch and thread count: each side's median ms per call over alternating blocks,
new / old (below 1: the new checkout is faster), and whether the outputs are bit-identical.
Only one side computes at a time, so the two never share the cores (benchmarks/workers.py).
"""
import argparse
import json
import os
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from models import MODELS  # noqa: E402
from workers import Worker, interleave  # noqa: E402

WORKER = r"""
import hashlib, json, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from models import MODELS, load_example
from workers import serve
import cnncompile
name, batch, threads = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
shape = MODELS[name]
model = load_example(name)["model"].eval()
compiled = cnncompile.compile(model, shape, num_threads=threads)
x = np.random.default_rng(batch).standard_normal((batch,) + shape[1:]).astype(np.float32)
y = compiled(x)
print(json.dumps({"digest": hashlib.sha256(y.tobytes()).hexdigest()}), flush=True)
serve(lambda: compiled(x))
"""


def worker(checkout, name, batch, threads):
    env = dict(os.environ, PYTHONPATH=str(Path(checkout).resolve()), OMP_NUM_THREADS=str(threads),
               OPENBLAS_NUM_THREADS="1")
    return Worker([sys.executable, "-c", WORKER, str(HERE), name, str(batch), str(threads)], env)


def compare(old, new, name, batch, threads, seconds, rounds, pause):
    sides = {"old": worker(old, name, batch, threads), "new": worker(new, name, batch, threads)}
    try:
        digests = {side: w.ready()["digest"] for side, w in sides.items()}
        times = interleave(sides, seconds, rounds, pause)
    finally:
        for w in sides.values():
            w.close()
    old_ms, new_ms = (1e3 * statistics.median(times[k]) for k in ("old", "new"))
    return dict(model=name, batch=batch, threads=threads, old_ms=old_ms, new_ms=new_ms,
                ratio=new_ms / old_ms, identical=digests["old"] == digests["new"])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old", help="the checkout to compare against")
    parser.add_argument("new", help="the checkout to measure")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--batch", default="1", help="batch sizes, e.g. 1,32")
    parser.add_argument("--threads", default=f"1,{len(os.sched_getaffinity(0))}",
                        help="thread counts")
    parser.add_argument("--seconds", type=float, default=2.0, help="timed seconds per side")
    parser.add_argument("--rounds", type=int, default=10, help="alternating blocks per side")
    parser.add_argument("--pause", type=float, default=0.02,
                        help="seconds to wait after each block (default 0.02)")
    parser.add_argument("--json", help="also write the rows as JSON")
    args = parser.parse_args(argv)
    rows = []
    print(f"{'model':<16} {'batch':>5} {'threads':>7} {'old ms':>9} {'new ms':>9} "
          f"{'new/old':>7}  outputs")
    for name in args.models.split(","):
        for threads in (int(t) for t in args.threads.split(",")):
            for batch in (int(b) for b in args.batch.split(",")):
                r = compare(args.old, args.new, name, batch, threads, args.seconds, args.rounds,
                            args.pause)
                rows.append(r)
                print(f"{r['model']:<16} {r['batch']:>5} {r['threads']:>7} {r['old_ms']:>9.3f} "
                      f"{r['new_ms']:>9.3f} {r['ratio']:>7.3f}  "
                      f"{'identical' if r['identical'] else 'differ'}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
