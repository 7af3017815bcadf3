"""The build and its cache when things go wrong: no compiler, a bad flag, an unusable cache
folder, a full disk, and several processes building the same model at once."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import cnncompile
import cnncompile.nn as nn
from cnncompile import reference
from cnncompile.errors import BuildError
from helpers import ROOT


def small_model():
    cnncompile.manual_seed(1)
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()).eval()


def test_no_c_compiler_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    with pytest.raises(BuildError, match="no C compiler.*install gcc or clang, or set CC"):
        cnncompile.compile(small_model(), (1, 1, 5, 5), cache_dir=tmp_path / "cache")
    assert not any((tmp_path / "cache").glob("*"))


def test_broken_flag_names_the_command_and_leaves_no_entry(tmp_path):
    with pytest.raises(BuildError, match="-fno-such-flag"):
        cnncompile.compile(small_model(), (1, 1, 5, 5), cache_dir=tmp_path, flags=["-fno-such-flag"])
    assert list(tmp_path.iterdir()) == []  # the failed build's folder is gone


def test_unusable_cache_folder_is_a_clear_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(BuildError, match="cannot write to the build cache.*CNNCOMPILE_CACHE_DIR"):
        cnncompile.compile(small_model(), (1, 1, 5, 5), cache_dir=blocker / "cache")


def test_concurrent_builds_of_one_model_share_one_entry(tmp_path):
    script = textwrap.dedent(f"""
        import numpy as np
        import cnncompile, cnncompile.nn as nn
        cnncompile.manual_seed(1)
        model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()).eval()  # as small_model()
        c = cnncompile.compile(model, (1, 1, 5, 5), cache_dir={str(tmp_path)!r})
        print(c.path, float(c(np.ones((1, 1, 5, 5), np.float32)).sum()))
    """)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    procs = [subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    results = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in results]
    outputs = {out.strip() for out, _ in results}
    assert len(outputs) == 1  # same library, same numbers
    entries = [p for p in tmp_path.iterdir()]
    assert len(entries) == 1 and not entries[0].name.startswith(".build-")


FULL_DISK = textwrap.dedent("""
    import resource, signal, sys
    import numpy as np
    import cnncompile, cnncompile.nn as nn
    limit = int(sys.argv[2])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    cnncompile.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()).eval()  # as small_model()
    try:
        cnncompile.compile(model, (1, 1, 5, 5), cache_dir=sys.argv[1])
    except cnncompile.BuildError as exc:
        print(exc)
        sys.exit(3)
""")


@pytest.mark.parametrize("limit", [1_000, 12_000, 24_000])
def test_full_disk_during_the_build_is_a_clear_error_and_leaves_no_entry(tmp_path, limit):
    """A file size limit makes every write past it fail, as a full disk does: while Python
    writes model.c (1 KB), while it copies the runtime headers (12 KB), while the compiler
    writes model.o (24 KB). Each is a BuildError naming the cause; the cache keeps no entry,
    and the next build of the same model, with room, succeeds and is correct."""
    cache = tmp_path / "cache"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    res = subprocess.run([sys.executable, "-c", FULL_DISK, str(cache), str(limit)], env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 3, res.stdout + res.stderr
    assert "File too large" in res.stdout or "File size limit exceeded" in res.stdout, res.stdout
    assert list(cache.iterdir()) == []  # neither an entry nor a half-built folder
    compiled = cnncompile.compile(small_model(), (1, 1, 5, 5), cache_dir=cache)
    assert not compiled.build_info["cached"]
    x = np.ones((2, 1, 5, 5), np.float32)
    np.testing.assert_allclose(compiled(x), reference.run(compiled.graph, x), rtol=1e-5, atol=1e-6)


def test_the_cache_keeps_its_size_limit_dropping_the_least_recently_used(tmp_path):
    """Each compile in a process of its own, as over days of use: once the entries outgrow
    CNNCOMPILE_CACHE_SIZE, a new build removes the least recently used; a cache hit counts
    as a use."""
    script = textwrap.dedent(f"""
        import sys
        import cnncompile, cnncompile.nn as nn
        cnncompile.manual_seed(int(sys.argv[1]))
        model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()).eval()
        print(cnncompile.compile(model, (1, 1, 5, 5), cache_dir={str(tmp_path)!r}).path.parent)
    """)

    def compile_seed(seed, limit=0):
        env = dict(os.environ, PYTHONPATH=str(ROOT), CNNCOMPILE_CACHE_SIZE=str(limit))
        out = subprocess.run([sys.executable, "-c", script, str(seed)], env=env, text=True,
                             capture_output=True, timeout=300)
        assert out.returncode == 0, out.stderr
        return os.path.basename(out.stdout.strip())

    def entries():
        return {p.name for p in tmp_path.iterdir()}

    a, b = compile_seed(1), compile_seed(2)
    sizes = [sum(f.stat().st_size for f in (tmp_path / e).iterdir()) for e in (a, b)]
    limit = sum(sizes) + min(sizes) // 2  # two entries fit, three do not
    c = compile_seed(3, limit)
    assert entries() == {b, c}  # a, the oldest, went
    assert compile_seed(2, limit) == b  # a hit: b is now the most recently used
    d = compile_seed(4, limit)
    assert entries() == {b, d}
    assert compile_seed(5, 0) and len(entries()) == 3  # 0: no limit


def test_a_cache_size_that_is_not_a_size_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNCOMPILE_CACHE_SIZE", "ten gigabytes")
    with pytest.raises(BuildError,
                       match="CNNCOMPILE_CACHE_SIZE='ten gigabytes' is not a size.*10G"):
        cnncompile.compile(small_model(), (1, 1, 5, 5), cache_dir=tmp_path)
