"""Benchmark cnncompile against PyTorch eager and ONNX Runtime, side by side in one process.

    python benchmarks/run.py                           # every model, batch 1, 1 and 2 threads
    python benchmarks/run.py --models resnet18,lenet5 --batch 1,32 --threads 2
    python benchmarks/run.py --json results.json --svg results.svg

Protocol (../shared/BENCHMARKS.md): the same input, weights and thread count for every
engine; engines alternate in rounds so that machine noise hits them alike; the figure is the
median time per call after warm-up. Judge the ratios, not absolute times across runs.
Needs the `bench` extra (onnxruntime, onnx) and torch.
"""
import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

# numpy's OpenBLAS threads spin for a while after each BLAS call (compiling packs weights with
# matmul); on a machine with few cores they take cycles from whichever engine is timed next.
# torch (its own BLAS and OpenMP) and ONNX Runtime (its own thread pool) are not affected.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models import MODELS, pair  # noqa: E402


def export_onnx(torch_model, shape):
    import torch
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(torch_model, (torch.zeros(shape),), buf, dynamo=False, opset_version=17,
                          input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
    return buf.getvalue()


def ort_session(onnx_bytes, threads):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(onnx_bytes, opts, providers=["CPUExecutionProvider"])


def time_engines(engines, seconds, min_iters=5, max_iters=5000, rounds=5):
    """Median milliseconds per call of each engine, alternating between them in rounds."""
    per_call = {}
    for name, fn in engines.items():
        for _ in range(3):
            fn()
        t0 = time.perf_counter()
        fn()
        per_call[name] = max(time.perf_counter() - t0, 1e-6)
    times = {name: [] for name in engines}
    for _ in range(rounds):
        for name, fn in engines.items():
            n = int(min(max_iters, max(min_iters, seconds / rounds / per_call[name])))
            for _ in range(n):
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
    return {name: 1e3 * statistics.median(t) for name, t in times.items()}


def bench_model(name, batches, threads, seconds, log):
    import torch

    import cnncompile
    model, twin, shape = pair(name)
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        t0 = time.perf_counter()
        cnncompile.compile(model, shape, cache_dir=cache)
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        cnncompile.compile(model, shape, cache_dir=cache)
        cached = time.perf_counter() - t0
    onnx_bytes = export_onnx(twin, shape)
    for t in threads:
        torch.set_num_threads(t)
        compiled = cnncompile.compile(model, shape, num_threads=t)
        flops = sum(n.meta.get("flops", 0) for n in compiled.graph.nodes())
        session = ort_session(onnx_bytes, t)
        for b in batches:
            x = np.random.default_rng(b).standard_normal((b,) + shape[1:]).astype(np.float32)
            xt = torch.from_numpy(x)
            with torch.inference_mode():
                y_torch = twin(xt).numpy()
            y = compiled(x)
            y_ort = session.run(None, {"input": x})[0]
            err = float(np.max(np.abs(y - y_torch)))
            scale = float(np.max(np.abs(y_torch))) or 1.0

            def run_torch():
                with torch.inference_mode():
                    twin(xt)
            ms = time_engines({"cnncompile": lambda: compiled(x), "torch": run_torch,
                               "ort": lambda: session.run(None, {"input": x})}, seconds)
            row = dict(model=name, batch=b, threads=t, cnncompile_ms=ms["cnncompile"],
                       torch_ms=ms["torch"], ort_ms=ms["ort"],
                       ort_ratio=ms["ort"] / ms["cnncompile"],
                       torch_ratio=ms["torch"] / ms["cnncompile"],
                       gflops=flops * b / (ms["cnncompile"] * 1e6), max_err=err,
                       rel_err=err / scale, ort_err=float(np.max(np.abs(y_ort - y_torch))),
                       compile_cold_s=cold, compile_cached_s=cached,
                       workspace_bytes=compiled.workspace_bytes)
            rows.append(row)
            log(format_row(row))
    return rows


COLUMNS = [("model", "{:<16}"), ("batch", "{:>5}"), ("threads", "{:>7}"),
           ("cnncompile_ms", "{:>13.3f}"), ("torch_ms", "{:>9.3f}"), ("ort_ms", "{:>8.3f}"),
           ("ort_ratio", "{:>9.2f}"), ("torch_ratio", "{:>11.2f}"), ("gflops", "{:>7.1f}"),
           ("rel_err", "{:>8.1e}"), ("compile_cold_s", "{:>14.2f}"),
           ("compile_cached_s", "{:>16.3f}"), ("workspace_bytes", "{:>15,}")]
HEADERS = ["model", "batch", "threads", "cnncompile ms", "torch ms", "ORT ms", "ORT/cc",
           "torch/cc", "GFLOP/s", "err/max", "compile cold s", "compile cached s", "workspace B"]


def header():
    widths = [len(fmt.format(0 if "d" in fmt or "f" in fmt or "e" in fmt or "," in fmt else ""))
              for _, fmt in COLUMNS]
    return "  ".join(h.rjust(max(w, len(h))) if i else h.ljust(max(w, len(h)))
                     for i, (h, w) in enumerate(zip(HEADERS, widths)))


def format_row(row):
    widths = [len(h) for h in HEADERS]
    cells = []
    for i, ((key, fmt), w) in enumerate(zip(COLUMNS, widths)):
        text = fmt.format(row[key])
        cells.append(text.ljust(w) if i == 0 else text.rjust(w))
    return "  ".join(cells)


def write_svg(rows, path):
    """Grouped bars: ORT/cnncompile and torch/cnncompile per model and setting; 1.0 marked."""
    bar, gap, height, left = 12, 10, 260, 50
    peak = max(max(r["ort_ratio"], r["torch_ratio"]) for r in rows) * 1.1
    width = left + len(rows) * (2 * bar + gap) + 20
    y = lambda v: 20 + height * (1 - v / peak)  # noqa: E731
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 170}" '
             'font-family="sans-serif" font-size="10">',
             f'<text x="{left}" y="12">speed-up of cnncompile: ORT time / cnncompile (blue), '
             'torch time / cnncompile (orange)</text>',
             f'<line x1="{left}" x2="{width}" y1="{y(1):.1f}" y2="{y(1):.1f}" stroke="black" '
             'stroke-dasharray="4"/>',
             f'<text x="5" y="{y(1) + 3:.1f}">1.0</text>']
    for i, r in enumerate(rows):
        x = left + i * (2 * bar + gap)
        for j, (key, colour) in enumerate((("ort_ratio", "#4477aa"), ("torch_ratio", "#ee7733"))):
            top = y(r[key])
            parts.append(f'<rect x="{x + j * bar}" y="{top:.1f}" width="{bar - 1}" '
                         f'height="{20 + height - top:.1f}" fill="{colour}"/>')
        label = f'{r["model"]} b{r["batch"]} t{r["threads"]}'
        parts.append(f'<text transform="translate({x + bar},{height + 30}) rotate(60)">{label}</text>')
    parts.append("</svg>")
    Path(path).write_text("\n".join(parts) + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(MODELS),
                        help=f"comma-separated, from: {', '.join(MODELS)}")
    parser.add_argument("--batch", default="1", help="batch sizes, e.g. 1,32")
    parser.add_argument("--threads", default=f"1,{os.cpu_count()}", help="thread counts")
    parser.add_argument("--seconds", type=float, default=2.0,
                        help="measuring time per engine and setting (default 2)")
    parser.add_argument("--json", help="also write the rows as JSON")
    parser.add_argument("--svg", help="also draw the ratios as an SVG bar chart")
    args = parser.parse_args(argv)
    names = [m for m in args.models.split(",") if m]
    unknown = set(names) - set(MODELS)
    if unknown:
        parser.error(f"unknown model(s) {sorted(unknown)}; choose from {', '.join(MODELS)}")
    batches = [int(b) for b in args.batch.split(",")]
    threads = sorted({int(t) for t in args.threads.split(",")})
    print(header(), flush=True)
    rows = []
    for name in names:
        rows += bench_model(name, batches, threads, args.seconds, lambda s: print(s, flush=True))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    if args.svg:
        write_svg(rows, args.svg)
    worst = min(rows, key=lambda r: r["ort_ratio"])
    print(f"\nlowest ORT/cnncompile: {worst['ort_ratio']:.2f} ({worst['model']}, batch "
          f"{worst['batch']}, {worst['threads']} threads); largest error relative to "
          f"max|y_torch|: {max(r['rel_err'] for r in rows):.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
