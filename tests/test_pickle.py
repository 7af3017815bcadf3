"""A CompiledModel pickles (its C source and weights), builds again where it is unpickled, and
gives the same bits there: in a fresh process, and on the workers of a Dask cluster."""
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

import cnncompile
from cnncompile import persist
from helpers import ROOT, load_example, random_input


@pytest.fixture(scope="module")
def simplecnn():
    return cnncompile.compile(load_example("seed_simplecnn")["model"], (1, 3, 32, 32))


def test_pickled_model_gives_the_same_bits_in_a_fresh_process(tmp_path, simplecnn):
    x = random_input((5, 3, 32, 32))
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(simplecnn))
    np.save(tmp_path / "x.npy", x)
    script = ("import pickle, sys, numpy as np\n"
              "m = pickle.loads(open('model.pkl', 'rb').read())\n"
              "np.save('y.npy', m(np.load('x.npy')))\n"
              "print(m.build_info['cached'])\n")
    # a cache of its own: the other side builds the model from the pickled source
    env = dict(os.environ, PYTHONPATH=str(ROOT), CNNCOMPILE_CACHE_DIR=str(tmp_path / "cache"))
    res = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "False"  # built there, not found
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), simplecnn(x))


def test_models_with_weights_blob_and_several_outputs_pickle():
    from cnncompile import nn

    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3)
            self.fc = nn.Linear(4 * 26 * 26, 3)

        def forward(self, x):
            feats = self.conv(x)
            return {"logits": self.fc(feats.flatten(1)), "feats": feats}

    model = cnncompile.compile(Two().eval(), (1, 1, 28, 28), weights="blob")
    assert model.weights_asm is not None
    again = pickle.loads(pickle.dumps(model))
    assert again.build_info["cached"]  # this process built the same source already
    x = random_input((3, 1, 28, 28))
    got, want = again(x), model(x)
    assert list(got) == ["logits", "feats"]
    for key in want:
        np.testing.assert_array_equal(got[key], want[key])
    assert again.num_threads == model.num_threads


def test_an_altered_pickle_is_refused(simplecnn):
    data = pickle.dumps(simplecnn)
    i = data.index(b"simplecnn_forward(")
    tampered = data[:i] + b"simplecnn_forwarx(" + data[i + len(b"simplecnn_forward("):]
    with pytest.raises(ValueError, match="does not match the hash of its source and weights"):
        pickle.loads(tampered)
    state = persist.pickle_state(simplecnn)
    state["runtime"] = "0" * 32
    state["digest"] = persist.state_digest(state)
    with pytest.raises(ValueError, match="another version of cnncompile"):
        persist.from_pickle(type(simplecnn), state)


def test_a_saved_and_loaded_model_pickles(tmp_path, simplecnn):
    loaded = cnncompile.load(simplecnn.save(tmp_path / "saved"))
    x = random_input((2, 3, 32, 32))
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(loaded))(x), simplecnn(x))


def test_batch_inference_on_a_dask_cluster(simplecnn):
    distributed = pytest.importorskip("distributed")
    import dask.array as da
    x = random_input((40, 3, 32, 32), seed=3)
    want = simplecnn(x)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        chunks = da.from_array(x, chunks=(8, 3, 32, 32))
        out = chunks.map_blocks(simplecnn, drop_axis=[2, 3], chunks=(8, 10),
                                dtype=np.float32).compute()
        np.testing.assert_array_equal(out, want)
        # and by hand: one future per chunk, spread over both worker processes
        futures = client.map(lambda part: (os.getpid(), simplecnn.num_threads, simplecnn(part)),
                             [x[i:i + 10] for i in range(0, 40, 10)])
        results = client.gather(futures)
        np.testing.assert_array_equal(np.concatenate([y for _, _, y in results]), want)
        assert os.getpid() not in {pid for pid, _, _ in results}
        # the worker's own thread count: Dask's workers run with OMP_NUM_THREADS=1
        assert {threads for _, threads, _ in results} == {1}
