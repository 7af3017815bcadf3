"""CompiledModel: input checks and conversions, free batch size, cache, save/load, threads."""
import ctypes
import os
import threading
import time

import numpy as np
import pytest

import cnncompile
import cnncompile.nn as nn
from cnncompile import reference
from cnncompile.resources import runtime_dir
from helpers import assert_close, load_example, random_input


@pytest.fixture(scope="module")
def simplecnn():
    ns = load_example("seed_simplecnn")
    return cnncompile.compile(ns["model"].eval(), (1, 3, 32, 32))


def expected(compiled, x):
    return reference.run(compiled.graph, np.asarray(x, np.float32))


def test_batch_size_is_free(simplecnn):
    for n in (1, 2, 7, 33):
        x = random_input((n, 3, 32, 32), seed=n)
        assert_close(simplecnn(x), expected(simplecnn, x))
    empty = simplecnn(np.zeros((0, 3, 32, 32), np.float32))
    assert empty.shape == (0, 10) and empty.dtype == np.float32


def test_unbatched_input_gives_unbatched_output(simplecnn):
    x = random_input((3, 32, 32))
    y = simplecnn(x)
    assert y.shape == (10,)
    assert_close(y, expected(simplecnn, x[None])[0])


def test_wrong_shape_or_dtype_says_what_was_expected(simplecnn):
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 3, 32, 32\).*got \(1, 3, 28, 28\)"):
        simplecnn(np.zeros((1, 3, 28, 28), np.float32))
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 3, 32, 32\).*got \(\)"):
        simplecnn(np.float32(1))
    with pytest.raises(ValueError, match=r"got \(1, 1, 3, 32, 32\)"):
        simplecnn(np.zeros((1, 1, 3, 32, 32), np.float32))
    with pytest.raises(TypeError, match=r"float32 array.*got dtype int64.*astype\(np.float32\)"):
        simplecnn(np.zeros((1, 3, 32, 32), np.int64))
    with pytest.raises(TypeError, match="got dtype bool"):
        simplecnn(np.zeros((1, 3, 32, 32), bool))


def test_any_float_layout_is_converted(simplecnn):
    base = random_input((4, 3, 32, 32))
    want = expected(simplecnn, base)
    variants = {
        "float64": base.astype(np.float64),
        "float16-exact": base.astype(np.float16),
        "fortran": np.asfortranarray(base),
        "negative strides": base[::-1].copy()[::-1],
        "strided": np.repeat(base, 2, axis=0)[::2],
        "list": base.tolist(),
        "big-endian": base.astype(">f4"),
        "ndarray subclass": base.view(type("Sub", (np.ndarray,), {})),
    }
    readonly = base.copy()
    readonly.flags.writeable = False
    variants["read-only"] = readonly
    for what, x in variants.items():
        ref = want if what != "float16-exact" else expected(simplecnn, x)
        assert_close(simplecnn(x), ref, what)
    assert_close(simplecnn(base), want)  # inputs are not modified


def test_output_is_a_fresh_array(simplecnn):
    x = random_input((2, 3, 32, 32))
    a, b = simplecnn(x), simplecnn(x)
    assert a is not b and not np.shares_memory(a, b)
    a[:] = 0
    assert np.abs(simplecnn(x) - b).max() == 0


def test_cached_build_is_fast_and_identical(simplecnn):
    model = load_example("seed_simplecnn")["model"].eval()
    first = cnncompile.compile(model, (1, 3, 32, 32))
    t0 = time.perf_counter()
    again = cnncompile.compile(model, (1, 3, 32, 32))
    seconds = time.perf_counter() - t0
    assert again.build_info["cached"] and again.path == first.path
    assert seconds < 1.0, f"cached compile took {seconds:.2f}s"


def test_save_load_and_plain_c_abi(simplecnn, tmp_path):
    out = simplecnn.save(tmp_path / "exported")
    headers = {p.name for p in runtime_dir().glob("*.h")}
    assert {p.name for p in out.iterdir()} >= {"model.c", "model.h", "libmodel.so",
                                               "model.json"} | headers
    x = random_input((3, 3, 32, 32))
    loaded = cnncompile.load(out)
    np.testing.assert_array_equal(loaded(x), simplecnn(x))
    # the shared library needs no Python package at all: call it through ctypes
    lib = ctypes.CDLL(str(out / "libmodel.so"))
    lib.simplecnn_workspace_size.restype = ctypes.c_size_t
    ws = ctypes.create_string_buffer(lib.simplecnn_workspace_size())
    y = np.empty((3, 10), np.float32)
    fp = ctypes.POINTER(ctypes.c_float)
    rc = lib.simplecnn_forward(x.ctypes.data_as(fp), y.ctypes.data_as(fp), 3, ws)
    assert rc == 0
    np.testing.assert_array_equal(y, simplecnn(x))
    assert lib.simplecnn_forward(x.ctypes.data_as(fp), y.ctypes.data_as(fp), -1, ws) == -1


def test_threads_share_one_model(simplecnn):
    inputs = [random_input((3, 3, 32, 32), seed=s) for s in range(8)]
    wants = [expected(simplecnn, x) for x in inputs]
    errors = []

    def work(i):
        for _ in range(20):
            y = simplecnn(inputs[i])
            if np.abs(y - wants[i]).max() > 1e-4:
                errors.append(i)
    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_summary_and_profile(simplecnn):
    text = simplecnn.summary()
    for piece in ("conv1", "conv2d", "(1, 32, 32, 32)", "896", "1,769,472", "relu",
                  "Total params: 82,826", f"workspace {simplecnn.workspace_bytes:,} bytes",
                  "nchw_to_nchw16c.shifted", "simplecnn_forward"):
        assert piece in text, piece
    stats = simplecnn.profile(random_input((1, 3, 32, 32)), repeat=5, warmup=1)
    assert stats["median_ms"] > 0 and stats["batch"] == 1


def test_threads_give_the_same_numbers():
    """Layers big enough to be shared among threads give the same results."""
    ns = load_example("vgg11_cifar")
    compiled = cnncompile.compile(ns["model"].eval(), (1, 3, 32, 32), num_threads=1)
    x = random_input((2, 3, 32, 32))
    one = compiled(x)
    compiled.num_threads = 2
    two = compiled(x)
    assert_close(two, one, "2 threads vs 1")
    assert_close(two, expected(compiled, x), "2 threads vs reference")
    assert "cnn_parallel(1," in compiled.c_source  # its big layers do run in parallel


def test_models_with_different_thread_counts_take_turns_on_one_thread():
    """The thread count belongs to the library and the OS thread, and models compiled from the
    same C share one library: a model must set its own again after another model of the same
    library set a different one, and only then."""
    ns = load_example("lenet5")
    one = cnncompile.compile(ns["model"].eval(), (1, 1, 28, 28), num_threads=1)
    two = cnncompile.compile(ns["model"].eval(), (1, 1, 28, 28), num_threads=1)
    two.num_threads = 2
    assert one._lib is two._lib
    calls = []
    for model in (one, two):
        real = model._set_threads
        model._set_threads = lambda n, real=real: (calls.append(n), real(n))
    x = random_input((1, 1, 28, 28))
    one._threads_set.n = None  # whatever earlier tests set
    for model in (one, two, two, one, one, two):
        model(x)
    assert calls == [1, 2, 1, 2]  # on each change of model, not on every call


def test_batches_go_through_group_layers_a_group_at_a_time():
    """Layers that compute several samples at once (nchw.im2row_gemm: one product over the stacked
    patches) get groups of samples, the other layers each sample in turn, for any batch and
    thread count, residual operands included."""
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(3, 8, 3, padding=1)
            self.b = nn.Conv2d(8, 8, 3, padding=1)
            self.c = nn.Conv2d(8, 20, 1)

        def forward(self, x):
            y = nn.functional.relu(self.a(x))
            return self.c(nn.functional.relu(self.b(y) + y))
    kernels = {"b": "nchw.im2row_gemm", "c": "nchw.im2row_gemm"}
    # its weights (3 KB) weigh less than a sample's activations: no groups unless asked for
    alone = cnncompile.compile(Net().eval(), (1, 3, 5, 6), kernels=kernels)
    assert "_group(" not in alone.c_source
    for threads in (1, 2):
        compiled = cnncompile.compile(Net().eval(), (1, 3, 5, 6), num_threads=threads,
                                      kernels=kernels, werror=True, batch_group=16)
        assert "layer_b_group(" in compiled.c_source and "layer_c_group(" in compiled.c_source
        assert compiled.graph.node("b").meta.get("residual")
        for batch in (1, 2, 5, 16, 17, 33):
            x = random_input((batch, 3, 5, 6), seed=batch)
            assert_close(compiled(x), expected(compiled, x), f"{threads} threads, batch {batch}")


def test_linear_layers_compute_a_group_of_samples_at_once():
    """Linear layers read each weight once per group, broadcast against 16 samples at a time
    (the lanes of a vector, the inputs transposed into the group's scratch), 8 outputs at a
    time: output counts that leave 5 and 5 over, groups of 3, 16 and 20 samples, batches
    that leave a partial group, with and without bias, with activations."""
    class Head(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 4, 3)
            self.fc1 = nn.Linear(4 * 3 * 3, 37)
            self.fc2 = nn.Linear(37, 5, bias=False)

        def forward(self, x):
            x = nn.functional.relu(self.conv(x)).view(x.size(0), -1)
            return nn.functional.sigmoid(self.fc2(nn.functional.relu6(self.fc1(x))))
    for threads in (1, 2):
        compiled = cnncompile.compile(Head().eval(), (1, 2, 5, 5), num_threads=threads,
                                      werror=True)
        assert "layer_fc1_group(" in compiled.c_source and "layer_fc2_group(" in compiled.c_source
        for batch in (1, 2, 3, 4, 5, 7, 16, 19, 33):
            x = random_input((batch, 2, 5, 5), seed=batch)
            assert_close(compiled(x), expected(compiled, x), f"{threads} threads, batch {batch}")
    # batch_group: 1 keeps every sample on its own, in a workspace of one sample per slot; a
    # group of 3 leaves 1 or 2 samples over in the last group, and 3 is not a multiple of 4
    alone = cnncompile.compile(Head().eval(), (1, 2, 5, 5), num_threads=2, batch_group=1)
    assert "_group(" not in alone.c_source
    lanes = 2 * 4 * 37 * 16  # per slot: fc1's 37 transposed inputs of 16 samples
    assert alone.workspace_bytes * 16 + lanes == compiled.workspace_bytes
    three = cnncompile.compile(Head().eval(), (1, 2, 5, 5), num_threads=2, batch_group=3,
                               werror=True)
    assert three.workspace_bytes == alone.workspace_bytes * 3 + lanes
    twenty = cnncompile.compile(Head().eval(), (1, 2, 5, 5), num_threads=1, batch_group=20,
                                werror=True)  # 16 samples, then 4, in one group
    for batch in (1, 4, 5, 7, 8, 20, 23):
        x = random_input((batch, 2, 5, 5), seed=batch)
        assert_close(three(x), expected(three, x), f"groups of 3, batch {batch}")
        assert_close(twenty(x), expected(twenty, x), f"groups of 20, batch {batch}")
        assert_close(alone(x), expected(alone, x), f"no groups, batch {batch}")
    for bad in (0, 257, 2.5, True):
        with pytest.raises(ValueError, match="batch_group="):
            cnncompile.compile(Head().eval(), (1, 2, 5, 5), batch_group=bad)


def test_profile_per_layer(simplecnn):
    stats = simplecnn.profile(random_input((1, 3, 32, 32)), repeat=3, warmup=1, layers=True)
    assert [row[0] for row in stats["layers"]] == ["conv1", "pool", "fc1"]
    assert all(ms >= 0 for _, _, ms, _ in stats["layers"])
    # plain Python numbers: the result prints as floats, not numpy scalars
    assert "np." not in repr(stats) and all(type(v) is float for row in stats["layers"]
                                            for v in row[2:])
    assert type(stats["median_ms"]) is float and type(stats["batch"]) is int
    table = simplecnn.profile_table(random_input((1, 3, 32, 32)), repeat=3)
    lines = table.splitlines()
    assert "nchw_to_nchw16c.shifted" in table
    # the sum of the layers, and the whole call's median, which also counts the call itself
    assert lines[-2].startswith("sum of layers") and lines[-1].startswith("whole call (median)")
    layers = sum(float(line.split()[-3]) for line in lines[1:-2])
    assert abs(float(lines[-2].split()[-1]) - layers) < 0.01
    assert float(lines[-1].split()[-1]) > 0


def test_profile_times_layers_on_a_cache_line_aligned_workspace(simplecnn, monkeypatch):
    # a workspace off the 64-byte grid makes every vector load straddle two lines: the
    # per-layer times then came out up to twice the whole call's
    from cnncompile import compiled as compiled_module
    given = []

    def recording(size):
        given.append(compiled_module_aligned(size))
        return given[-1]

    compiled_module_aligned = compiled_module._aligned_bytes
    monkeypatch.setattr(compiled_module, "_aligned_bytes", recording)
    simplecnn._local.__dict__.clear()
    simplecnn.profile(random_input((1, 3, 32, 32)), repeat=2, warmup=1, layers=True)
    assert len(given) == 2  # the call's workspace and the profiler's
    for buf in given:
        assert buf.ctypes.data % 64 == 0 and buf.nbytes == simplecnn.workspace_bytes
    for size in range(1, 200, 7):
        assert compiled_module_aligned(size).ctypes.data % 64 == 0


def test_batch_runs_samples_in_parallel_with_their_own_workspace():
    ns = load_example("lenet5")
    compiled = cnncompile.compile(ns["model"].eval(), (1, 1, 28, 28), num_threads=2)
    assert "cnn_parallel_upto(slots, batch, run_samples" in compiled.c_source
    one_slot = cnncompile.compile(ns["model"].eval(), (1, 1, 28, 28), num_threads=1)
    assert compiled.workspace_bytes == 2 * one_slot.workspace_bytes
    x = random_input((9, 1, 28, 28))  # odd: threads get different counts
    assert_close(compiled(x), expected(compiled, x))
    np.testing.assert_array_equal(compiled(x), one_slot(x))  # same per-sample code


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_soak_100k_calls_with_varying_batch_sizes_does_not_grow_memory():
    """100,000 calls, batch 1 to 4 in turn: the process's resident memory after the first
    10,000 calls (everything warmed up) and after the last differ by less than 1 MiB."""
    cnncompile.manual_seed(3)
    model = cnncompile.nn.Sequential(cnncompile.nn.Conv2d(1, 4, 3), cnncompile.nn.ReLU(),
                                     cnncompile.nn.Flatten(), cnncompile.nn.Linear(36, 3)).eval()
    compiled = cnncompile.compile(model, (1, 1, 5, 5), num_threads=1)
    inputs = [random_input((b, 1, 5, 5), seed=b) for b in (1, 2, 3, 4)]
    wants = [expected(compiled, x) for x in inputs]
    total, warm = 100_000, 10_000
    for i in range(warm):
        compiled(inputs[i % 4])
    before = _rss_bytes()
    for i in range(warm, total):
        y = compiled(inputs[i % 4])
    after = _rss_bytes()
    assert_close(y, wants[(total - 1) % 4])
    assert after - before < 1 << 20, f"resident memory grew by {after - before} bytes"


def _longest_pause_of_a_sleeper(call):
    """Run call() while another thread sleeps 1 ms at a time; return the longest gap between
    its wake-ups inside the call, the call's length and the number of wake-ups inside it."""
    wakeups, done = [], threading.Event()

    def sleeper():
        while not done.is_set():
            time.sleep(0.001)
            wakeups.append(time.perf_counter())
    thread = threading.Thread(target=sleeper)
    thread.start()
    try:
        time.sleep(0.05)
        start = time.perf_counter()
        call()
        end = time.perf_counter()
        time.sleep(0.01)
    finally:
        done.set()
        thread.join()
    inside = [t for t in wakeups if start < t < end]
    edges = [start] + inside + [end]
    return max(b - a for a, b in zip(edges, edges[1:])), end - start, len(inside)


def test_calls_release_the_gil():
    """While one thread is inside a long C call, another thread that sleeps 1 ms at a time
    keeps waking up; waking needs the GIL. A sleeper needs almost no CPU, so this does not
    depend on a free core. Measured here: 27-58 wake-ups in a 120-700 ms call, the longest
    gap 20-30 % of the call (the shared machine steals time). A call through ctypes.PyDLL,
    which holds the GIL, gives 1 wake-up and a gap of 90-100 % of the call, every time, so
    one clean attempt out of three settles it."""
    ns = load_example("vgg11_cifar")
    compiled = cnncompile.compile(ns["model"].eval(), (1, 3, 32, 32), num_threads=1)
    x = random_input((8, 3, 32, 32))
    compiled(x)  # warm up
    attempts = [_longest_pause_of_a_sleeper(lambda: compiled(x)) for _ in range(3)]
    assert any(wakes >= 5 and longest < 0.6 * seconds
               for longest, seconds, wakes in attempts), attempts


def _speedup(work, count):
    """Time of `count` calls of work() in one thread over the same calls split between two."""
    def run(threads, calls):
        pool = [threading.Thread(target=lambda: [work() for _ in range(calls)])
                for _ in range(threads)]
        start = time.perf_counter()
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        return time.perf_counter() - start
    return run(1, count) / run(2, count // 2)


def test_two_threads_call_one_model_in_parallel():
    """Two Python threads calling one single-threaded model get through the calls about as
    much faster than one thread as two threads hashing (hashlib drops the GIL too) do on the
    machine at that moment: nothing in a call serialises the threads. Best of three, since
    a shared machine can take a core away for a while. Measured here on an idle machine:
    1.8-2.1x for the model, 1.1-1.9x for hashing; with the test suite running beside it,
    1.1-1.4x for both. Calls serialised by a lock would stay at 1.0x."""
    import hashlib
    ns = load_example("vgg11_cifar")
    compiled = cnncompile.compile(ns["model"].eval(), (1, 3, 32, 32), num_threads=1)
    x = random_input((1, 3, 32, 32))
    compiled(x)
    block = np.ones(1 << 20, np.uint8)
    seconds = time.perf_counter()
    compiled(x)
    calls = max(8, int(0.3 / (time.perf_counter() - seconds))) // 2 * 2
    results = []
    for _ in range(3):
        hashing = _speedup(lambda: hashlib.sha256(block).digest(), 200)
        model = _speedup(lambda: compiled(x), calls)
        results.append((round(model, 2), round(hashing, 2)))
        if model >= 0.8 * hashing:
            break
    assert any(m >= 0.8 * h for m, h in results), f"(model, hashing) speed-ups: {results}"


def test_default_threads_count_the_container_cpu_quota(tmp_path, monkeypatch):
    """cgroup v2's cpu.max and v1's cfs quota and period, as a container runtime writes them;
    the default thread count is at most the quota, rounded up."""
    from cnncompile.compiled import cgroup_cpu_quota, default_threads
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_quota(v2) is None
    (v2 / "cpu.max").write_text("150000 100000\n")
    assert cgroup_cpu_quota(v2) == 1.5
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_cpu_quota(v1) is None
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("50000\n")
    assert cgroup_cpu_quota(v1) == 0.5
    assert cgroup_cpu_quota(tmp_path / "none") is None
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(cnncompile.compiled, "cgroup_cpu_quota", lambda: 0.5)
    assert default_threads() == 1
    monkeypatch.setattr(cnncompile.compiled, "cgroup_cpu_quota", lambda: None)
    assert default_threads() == len(os.sched_getaffinity(0))
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert default_threads() == 3
