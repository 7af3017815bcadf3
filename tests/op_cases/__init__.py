"""Op test cases by family, merged into test_ops.CASES: each module here defines ``CASES``
(op name -> [(layers or model function, input shape)]) in the format test_ops.py documents."""
import importlib
import pkgutil


def collect():
    cases = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for op, entries in module.CASES.items():
            cases.setdefault(op, []).extend(entries)
    return cases
