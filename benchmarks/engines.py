"""The engines the harness times, each set up in a worker process of its own.

    python benchmarks/engines.py '{"engine": "ort_static", "model": "lenet5", "batch": 8,
                                   "threads": 2, "workdir": "/tmp/w"}'

sets the engine up for that model, batch and thread count, writes its output for the batch's
input to <workdir>/<engine>.npy (so the coordinator can compare it with torch's), prints one
JSON line (pid, set-up facts) and then times calls on request (workers.serve). Every engine
gets the same input (seeded by the batch size) and the same weights (seeded per model).
"""
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from models import TORCHVISION, input_shape, load_example, pair, torchvision_model  # noqa: E402
from workers import serve  # noqa: E402

ENGINES = ["cnncompile", "torch", "ort_static", "ort_dynamic", "openvino"]


def batch_input(spec):
    shape = (spec["batch"],) + input_shape(spec["model"])[1:]
    return np.random.default_rng(spec["batch"]).standard_normal(shape).astype(np.float32)


def torch_module(spec):
    if spec["model"].startswith(TORCHVISION):
        return torchvision_model(spec["model"])
    return pair(spec["model"])[1]


def export_onnx(spec, dynamic):
    """Path of the torch module exported to ONNX at the measured batch size; with
    ``dynamic``, the batch dimension is left symbolic."""
    import torch
    torch.set_num_threads(spec["threads"])
    x = torch.from_numpy(batch_input(spec))
    path = Path(spec["workdir"]) / f"{spec['engine']}.onnx"
    axes = {"input": {0: "batch"}, "output": {0: "batch"}} if dynamic else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(torch_module(spec), (x,), str(path), dynamo=False, opset_version=17,
                          input_names=["input"], output_names=["output"], dynamic_axes=axes)
    return path


def setup_cnncompile(spec):
    import cnncompile
    name, threads = spec["model"], spec["threads"]
    model = (torchvision_model(name) if name.startswith(TORCHVISION)
             else load_example(name)["model"].eval())
    shape = input_shape(name)
    info = {}
    if spec.get("time_compile"):
        with tempfile.TemporaryDirectory() as cache:
            for key in ("compile_cold_s", "compile_cached_s"):
                t0 = time.perf_counter()
                cnncompile.compile(model, shape, cache_dir=cache, num_threads=threads)
                info[key] = time.perf_counter() - t0
    compiled = cnncompile.compile(model, shape, num_threads=threads)
    info["flops"] = sum(n.meta.get("flops", 0) for n in compiled.graph.nodes())
    info["workspace_bytes"] = compiled.workspace_bytes
    x = batch_input(spec)
    return lambda: compiled(x), compiled(x), info


def setup_torch(spec):
    import torch
    torch.set_num_threads(spec["threads"])
    module = torch_module(spec)
    x = torch.from_numpy(batch_input(spec))

    def call():
        with torch.inference_mode():
            return module(x)
    return call, call().numpy(), {}


def setup_ort(spec, dynamic):
    import onnxruntime as ort
    path = export_onnx(spec, dynamic)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = spec["threads"]
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: batch_input(spec)}
    return lambda: session.run(None, feed), session.run(None, feed)[0], {}


def setup_openvino(spec):
    import openvino as ov
    path = export_onnx(spec, dynamic=False)
    core = ov.Core()
    # f32: without the hint OpenVINO runs bf16 on processors that have it
    config = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY",
              "NUM_STREAMS": "1", "INFERENCE_NUM_THREADS": str(spec["threads"])}
    compiled = core.compile_model(core.read_model(str(path)), "CPU", config)
    request = compiled.create_infer_request()
    x = batch_input(spec)

    def call():
        return request.infer({0: x}, share_inputs=True)
    call()
    return call, request.get_output_tensor(0).data.copy(), {
        "version": ov.__version__,
        "precision": compiled.get_property("INFERENCE_PRECISION_HINT").to_string(),
        "threads": int(compiled.get_property("INFERENCE_NUM_THREADS"))}


SETUPS = {"cnncompile": setup_cnncompile, "torch": setup_torch,
          "ort_static": lambda spec: setup_ort(spec, dynamic=False),
          "ort_dynamic": lambda spec: setup_ort(spec, dynamic=True),
          "openvino": setup_openvino}


def main(spec):
    # the protocol owns the real stdout; anything a library prints goes to stderr
    protocol = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    t0 = time.perf_counter()
    call, output, info = SETUPS[spec["engine"]](spec)
    np.save(Path(spec["workdir"]) / f"{spec['engine']}.npy", np.asarray(output, dtype=np.float32))
    for _ in range(2):
        call()
    info.update(pid=os.getpid(), setup_s=time.perf_counter() - t0)
    protocol.write(json.dumps(info) + "\n")
    protocol.flush()
    serve(call, stdout=protocol)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
