"""Benchmark cnncompile against PyTorch eager, ONNX Runtime and OpenVINO, each in its own process.

    python benchmarks/run.py                           # every model, batch 1, 1 and all threads
    python benchmarks/run.py --models resnet18,lenet5 --batch 1,8,32 --threads 2 --busy-core
    python benchmarks/run.py --json results.json --svg results.svg
    /work/zoo/bin/python benchmarks/run.py --models torchvision:resnet50 --threads 1

Protocol (../shared/BENCHMARKS.md): every engine runs in a worker process of its own, set up
once per model, batch and thread count, with the same input, weights and thread count; the
workers are asked in turn for one timed block each, so only one computes at a time, with a
short pause after each block so that a spinning thread pool winds down before the next
engine's block. ONNX Runtime is exported at the measured batch and with a symbolic batch; the
faster session counts. OpenVINO is measured when it is installed. Reported: p50 and p95 ms
per engine, ratios of p50s. Judge the ratios, not absolute times across runs.
Needs the `bench` extra (onnxruntime, onnx; openvino optional) and torch; torchvision:<name>
models need torchvision.
"""
import argparse
import importlib.util
import json
import os
import signal
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from models import MODELS, families, is_model  # noqa: E402
from report import Table, summary, write_svg  # noqa: E402
from workers import Worker, busy_core, interleave, percentile  # noqa: E402

# row key prefix of each engine's times; ort_static and ort_dynamic also merge into "ort"
PREFIX = {"cnncompile": "cnncompile", "torch": "torch", "ort_static": "ort_static",
          "ort_dynamic": "ort_dynamic", "openvino": "ov"}


def available_engines(skip=()):
    """cnncompile, torch and both ORT sessions, OpenVINO when installed; less ``skip``
    (cnncompile and torch are always measured: they give the ratios and the errors)."""
    engines = ["cnncompile", "torch", "ort_static", "ort_dynamic"]
    if importlib.util.find_spec("openvino") is not None:
        engines.append("openvino")
    return [e for e in engines if e in ("cnncompile", "torch") or e not in skip]


def start_workers(engines, spec, workdir):
    """One worker per engine, all set up at once (nothing is timed yet); returns the ones
    that came up with their set-up reports. Only OpenVINO may fail (it is optional)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(spec["threads"]),
               OPENBLAS_NUM_THREADS=str(spec["threads"]))
    workers = {}
    for engine in engines:
        args = dict(spec, engine=engine, workdir=str(workdir),
                    time_compile=spec["time_compile"] and engine == "cnncompile")
        workers[engine] = Worker([sys.executable, str(HERE / "engines.py"), json.dumps(args)], env)
    ready = {}
    try:
        for engine, w in workers.items():
            try:
                ready[engine] = w.ready()
            except RuntimeError as e:
                if engine != "openvino":
                    raise
                print(f"OpenVINO left out of {spec['model']} batch {spec['batch']}: {e}",
                      file=sys.stderr)
                w.close()
    except BaseException:
        for w in workers.values():
            w.kill()
        raise
    return {e: workers[e] for e in ready}, ready


def bench_setting(engines, spec, args, compile_times):
    with tempfile.TemporaryDirectory() as tmp:
        workers, info = start_workers(engines, spec, Path(tmp))
        try:
            times = interleave(workers, args.seconds, args.rounds, args.pause)
        except BaseException:
            for w in workers.values():
                w.kill()
            raise
        for w in workers.values():
            w.close()
        outputs = {e: np.load(Path(tmp) / f"{e}.npy") for e in workers}
    row = dict(model=spec["model"], batch=spec["batch"], threads=spec["threads"],
               busy_core=args.busy_core)
    for engine, prefix in PREFIX.items():
        t = times.get(engine)
        row[f"{prefix}_ms"] = 1e3 * statistics.median(t) if t else None
        row[f"{prefix}_p95_ms"] = 1e3 * percentile(t, 95) if t else None
    measured = [k for k in ("static", "dynamic") if row[f"ort_{k}_ms"] is not None]
    export = min(measured, key=lambda k: row[f"ort_{k}_ms"]) if measured else None
    row.update(ort_ms=row.get(f"ort_{export}_ms"), ort_p95_ms=row.get(f"ort_{export}_p95_ms"),
               ort_export=export)
    cc = row["cnncompile_ms"]
    for key in ("ort", "torch", "ov"):
        row[f"{key}_ratio"] = row[f"{key}_ms"] / cc if row[f"{key}_ms"] else None
    y_torch = outputs["torch"]

    def error(engine):
        if engine not in outputs:
            return None
        return float(np.max(np.abs(outputs[engine].reshape(y_torch.shape) - y_torch)))
    if "compile_cold_s" in info["cnncompile"]:
        compile_times[spec["model"]] = {k: info["cnncompile"][k]
                                        for k in ("compile_cold_s", "compile_cached_s")}
    row.update(gflops=info["cnncompile"]["flops"] * spec["batch"] / (cc * 1e6),
               max_err=error("cnncompile"),
               rel_err=error("cnncompile") / (float(np.max(np.abs(y_torch))) or 1.0),
               ort_err=error(f"ort_{export}"), ov_err=error("openvino"),
               **compile_times[spec["model"]],
               workspace_bytes=info["cnncompile"]["workspace_bytes"],
               pids={e: i["pid"] for e, i in info.items()}, coordinator_pid=os.getpid(),
               ov_config={k: info["openvino"][k] for k in ("version", "precision", "threads")}
               if "openvino" in info else None)
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    choices = ", ".join(list(MODELS) + list(families()))
    parser.add_argument("--models", default=",".join(MODELS),
                        help=f"comma-separated, from: {choices}, or torchvision:<name> "
                             f"(default: the first {len(MODELS)})")
    parser.add_argument("--batch", default="1", help="batch sizes, e.g. 1,8,32")
    parser.add_argument("--threads", default=f"1,{len(os.sched_getaffinity(0))}",
                        help="thread counts (default: 1 and every core this process may use)")
    parser.add_argument("--seconds", type=float, default=2.0,
                        help="measuring time per engine and setting (default 2)")
    parser.add_argument("--rounds", type=int, default=10,
                        help="timed blocks per engine and setting, taken in turns (default 10)")
    parser.add_argument("--pause", type=float, default=0.02,
                        help="seconds to wait after each block (default 0.02)")
    parser.add_argument("--busy-core", action="store_true",
                        help="keep one core busy with another process while measuring")
    parser.add_argument("--skip", default="", help="engines to leave out: ort, openvino")
    parser.add_argument("--json", help="also write the rows as JSON")
    parser.add_argument("--svg", help="also draw the ratios as an SVG bar chart")
    args = parser.parse_args(argv)
    names = [m for m in args.models.split(",") if m]
    unknown = [m for m in names if not is_model(m)]
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {choices} "
                     "or torchvision:<name>")
    batches = [int(b) for b in args.batch.split(",")]
    threads = sorted({int(t) for t in args.threads.split(",")})
    skip = {e for s in args.skip.split(",") if s
            for e in (["ort_static", "ort_dynamic"] if s == "ort" else [s])}
    engines = available_engines(skip)
    table = Table(names)
    rows, compile_times = [], {}
    # a terminated run still stops its workers and the busy loop (the finally blocks run)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    with busy_core(args.busy_core) as busy_pid:
        if busy_pid is not None:
            print(f"one core kept busy by process {busy_pid}", flush=True)
        print(table.header(), flush=True)
        for name in names:
            for t in threads:
                for b in batches:
                    spec = dict(model=name, batch=b, threads=t,
                                time_compile=name not in compile_times)
                    row = bench_setting(engines, spec, args, compile_times)
                    row["busy_pid"] = busy_pid
                    rows.append(row)
                    print(table.row(row), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    if args.svg:
        write_svg(rows, args.svg)
    print("\n" + summary(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
