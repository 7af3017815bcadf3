"""Where templates/ and runtime/ are: inside the installed package, or beside it in a checkout."""
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def resource_dir(name):
    for candidate in (_PACKAGE / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"cnncompile's {name}/ folder is missing from {_PACKAGE} and "
                            f"{_PACKAGE.parent}; reinstall cnncompile")


def templates_dir():
    return resource_dir("templates")


def runtime_dir():
    return resource_dir("runtime")
