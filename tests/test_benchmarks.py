"""The benchmark harness runs end to end (a short run on a small model)."""
import json
import os
import subprocess
import sys

import pytest

from helpers import ROOT


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_harness_runs_and_writes_json_and_svg(tmp_path):
    """Each engine in a worker process of its own, distinct from the others and from the
    coordinator; both ONNX Runtime exports measured, the faster reported."""
    pytest.importorskip("onnxruntime")  # the `bench` extra; the README's test command installs it
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    res = subprocess.run([sys.executable, "benchmarks/run.py", "--models", "lenet5,seed_quiz",
                          "--threads", "1", "--seconds", "0.05", "--rounds", "3",
                          "--json", str(tmp_path / "r.json"), "--svg", str(tmp_path / "r.svg")],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    rows = json.loads((tmp_path / "r.json").read_text())
    assert [r["model"] for r in rows] == ["lenet5", "seed_quiz"]
    for r in rows:
        assert r["cnncompile_ms"] > 0 and r["torch_ms"] > 0 and r["ort_ms"] > 0
        assert r["cnncompile_p95_ms"] >= r["cnncompile_ms"]
        assert r["ort_export"] in ("static", "dynamic")
        assert r["ort_ms"] == min(r["ort_static_ms"], r["ort_dynamic_ms"])
        assert r["rel_err"] < 1e-4 and r["ort_err"] < 1e-3
        assert r["ov_err"] is None or r["ov_err"] < 1e-3
        pids = list(r["pids"].values())
        assert {"cnncompile", "torch", "ort_static", "ort_dynamic"} <= set(r["pids"])
        assert len(set(pids)) == len(pids) and r["coordinator_pid"] not in pids
        assert r["busy_pid"] is None
    assert (tmp_path / "r.svg").read_text().startswith("<svg")
    assert "ORT/cc" in res.stdout and "lowest ORT/cnncompile" in res.stdout


def test_busy_core_process_runs_while_measuring_and_is_stopped(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    res = subprocess.run([sys.executable, "benchmarks/run.py", "--models", "lenet5", "--threads",
                          "1", "--seconds", "0.05", "--rounds", "2", "--skip", "ort,openvino",
                          "--busy-core", "--json", str(tmp_path / "r.json")],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    [row] = json.loads((tmp_path / "r.json").read_text())
    pid = row["busy_pid"]
    assert row["busy_core"] and pid not in row["pids"].values() and pid != row["coordinator_pid"]
    assert f"one core kept busy by process {pid}" in res.stdout
    assert row["ort_ms"] is None and row["ov_ms"] is None
    assert not alive(pid)


def test_compare_times_two_checkouts_and_checks_their_outputs(tmp_path):
    """benchmarks/compare.py against the checkout itself: both sides time the same code, in
    their own processes, and their outputs are bit-identical."""
    res = subprocess.run([sys.executable, "benchmarks/compare.py", str(ROOT), str(ROOT),
                          "--models", "lenet5", "--threads", "1,2", "--batch", "1,3",
                          "--seconds", "0.05", "--rounds", "2", "--json", str(tmp_path / "c.json")],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    rows = json.loads((tmp_path / "c.json").read_text())
    assert [(r["threads"], r["batch"]) for r in rows] == [(1, 1), (1, 3), (2, 1), (2, 3)]
    for r in rows:
        assert r["identical"] and r["old_ms"] > 0 and r["new_ms"] > 0
    assert "new/old" in res.stdout
