import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))  # the benchmark models and their torch twins


@pytest.fixture(scope="session", autouse=True)
def _build_cache(tmp_path_factory):
    """Builds go to a fresh cache per test session, never the user's ~/.cache."""
    path = tmp_path_factory.mktemp("cnncompile-cache")
    old = os.environ.get("CNNCOMPILE_CACHE_DIR")
    os.environ["CNNCOMPILE_CACHE_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("CNNCOMPILE_CACHE_DIR", None)
    else:
        os.environ["CNNCOMPILE_CACHE_DIR"] = old
