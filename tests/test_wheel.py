"""A built wheel, installed (not editable) into a fresh virtual environment, compiles a model:
templates/ and runtime/ ship inside it."""
import os
import shutil
import subprocess
import sys
import textwrap

from helpers import ROOT

SCRIPT = textwrap.dedent("""
    import numpy as np, cnncompile, cnncompile.nn as nn
    import os
    assert cnncompile.__file__.startswith(os.environ["VENV"]), cnncompile.__file__
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(4 * 4 * 4, 3)).eval()
    compiled = cnncompile.compile(model, (1, 1, 8, 8))
    x = np.random.default_rng(0).standard_normal((2, 1, 8, 8)).astype(np.float32)
    from cnncompile import reference
    err = np.abs(compiled(x) - reference.run(compiled.graph, x)).max()
    assert err < 1e-5, err
    saved = compiled.save("bundle")  # the bundle's templates come from the wheel too
    assert (saved / "Makefile").is_file() and (saved / "model_main.c").is_file()
    print("OK", compiled.path)
""")


def test_wheel_installs_and_compiles(tmp_path):
    dist = tmp_path / "dist"
    # build from a clean copy: an in-tree build/ folder may hold files deleted since
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis"))
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                          "--no-build-isolation", "-w", str(dist), str(src)],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    (wheel,) = dist.glob("cnncompile-*.whl")
    import zipfile
    names = zipfile.ZipFile(wheel).namelist()
    assert "cnncompile/templates/model.c.j2" in names
    assert "cnncompile/templates/ops/conv.c.j2" in names
    for bundled in ("Makefile.j2", "model_main.c.j2"):  # what save() writes beside model.c
        assert f"cnncompile/templates/{bundled}" in names, bundled
    for header in (ROOT / "runtime").glob("*.h"):
        assert f"cnncompile/runtime/{header.name}" in names
    venv = tmp_path / "venv"
    # the venv sees the already-installed dependencies (numpy, cffi...) but not the checkout
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    py = venv / "bin" / "python"
    # no PYTHONPATH: the checkout (and the egg-info a build leaves there) must not be seen
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["CNNCOMPILE_CACHE_DIR"] = str(tmp_path / "cache")
    env["VENV"] = str(venv)
    # --force-reinstall: a cnncompile installed system-wide must not satisfy this install
    res = subprocess.run([str(py), "-m", "pip", "install", "--no-deps", "--no-index",
                          "--force-reinstall", str(wheel)], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    res = subprocess.run([str(py), "-c", SCRIPT], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.startswith("OK")
    res = subprocess.run([str(venv / "bin" / "cnncompile"), "--version"], env=env,
                         capture_output=True, text=True)
    assert res.returncode == 0 and "cnncompile" in res.stdout
