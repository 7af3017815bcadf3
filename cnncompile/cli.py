"""The ``cnncompile`` command.

    cnncompile compile examples/seed_simplecnn.py --input-shape 1,3,32,32 -o build/simplecnn
    cnncompile compile model.onnx -o build/model
    cnncompile inspect examples/lenet5.py --after fuse_activation
"""
import argparse
import importlib.util
import inspect
import sys
import time
from pathlib import Path

import numpy as np

from .version import __version__

FACTORY_NAMES = ("build_model", "make_model", "create_model", "get_model")


class CliError(Exception):
    pass


def parse_shape(text):
    try:
        shape = tuple(int(d) for d in text.replace("x", ",").split(",") if d.strip())
    except ValueError:
        raise CliError(f"--input-shape {text!r}: give integers separated by commas, e.g. "
                       "1,3,32,32") from None
    if len(shape) < 2 or any(d <= 0 for d in shape):
        raise CliError(f"--input-shape {text!r}: give positive N,C,H,W such as 1,3,32,32")
    return shape


def _is_model(obj):
    from .frontends import is_torch_module
    from .nn import Module
    return isinstance(obj, Module) or is_torch_module(obj)


def _is_model_class(obj):
    torch = sys.modules.get("torch")
    from .nn import Module
    bases = (Module,) + ((torch.nn.Module,) if torch is not None else ())
    return inspect.isclass(obj) and issubclass(obj, bases)


def load_model(spec):
    """Find the model in ``file.py``, ``file.py:Name`` or ``file.onnx``: returns (module,
    model, label); an ONNX file is returned as its path, with module None."""
    if spec.lower().endswith(".onnx"):
        if not Path(spec).is_file():
            raise CliError(f"{spec}: no such file")
        return None, spec, spec
    path, name = spec.rsplit(":", 1) if ":" in spec and not spec.endswith(".py") else (spec, "")
    file = Path(path)
    if not file.is_file():
        raise CliError(f"{file}: no such file; give a Python file that defines the model, "
                       "e.g. examples/seed_simplecnn.py or examples/lenet5.py:LeNet5")
    sys.path.insert(0, str(file.resolve().parent))
    mod_spec = importlib.util.spec_from_file_location(f"cnncompile_model_{file.stem}", file)
    module = importlib.util.module_from_spec(mod_spec)
    try:
        mod_spec.loader.exec_module(module)
    finally:
        sys.path.pop(0)

    is_class = _is_model_class
    if name:
        if not hasattr(module, name):
            raise CliError(f"{file} defines no {name!r}; it has: {_candidates(module) or 'no models'}")
        obj = getattr(module, name)
    else:
        obj = None
        for key in ("model", "Model"):
            if hasattr(module, key):
                obj, name = getattr(module, key), key
                break
        if obj is None:
            found = [(k, v) for k, v in vars(module).items() if _is_model(v)]
            if not found:
                found = [(k, v) for k, v in vars(module).items()
                         if is_class(v) and v.__module__ == module.__name__]
            if not found:
                found = [(k, v) for k, v in vars(module).items()
                         if k in FACTORY_NAMES and callable(v)]
            if len(found) != 1:
                what = ", ".join(k for k, _ in found) if found else "none"
                raise CliError(f"{file}: cannot tell which model to compile (candidates: {what}); "
                               f"name it: {file}:NAME, or define `model` in the file")
            name, obj = found[0]
    if is_class(obj) or (callable(obj) and not _is_model(obj)):
        try:
            obj = obj()
        except TypeError as exc:
            raise CliError(f"{file}:{name} could not be built without arguments ({exc}); "
                           f"define `model = {name}(...)` in the file") from None
    if not _is_model(obj):
        raise CliError(f"{file}:{name} is a {type(obj).__name__}, not a cnncompile.nn or "
                       "torch.nn Module; define the model with `import cnncompile.nn as nn`")
    return module, obj.eval(), f"{file}:{name}"


def _candidates(module):
    return ", ".join(k for k, v in vars(module).items()
                     if _is_model(v) or (_is_model_class(v) and v.__module__ == module.__name__))


def _input_shape(args, module):
    if args.input_shape:  # given once per input of forward(), in its argument order
        shapes = [parse_shape(text) for text in args.input_shape]
        return shapes[0] if len(shapes) == 1 else shapes
    if module is None:
        return None  # an ONNX file declares its input shape
    for key in ("INPUT_SHAPE", "input_shape"):
        if hasattr(module, key):
            shape = getattr(module, key)
            return list(shape) if isinstance(shape, list) else tuple(shape)
    raise CliError("the input shape is not known: pass --input-shape N,C,H,W (e.g. 1,3,32,32) "
                   "or define INPUT_SHAPE in the model file")


def cmd_compile(args):
    import cnncompile
    from . import build, frontends, reference
    module, model, label = load_model(args.model)
    shape = _input_shape(args, module)
    if module is None:
        model, shape = frontends.to_cnncompile(model, shape)
    out_dir = Path(args.output or f"build/{Path(args.model.split(':')[0]).stem}")
    inputs = "inputs" if isinstance(shape, list) else "input"
    print(f"Compiling {label} for {inputs} {shape} ...", flush=True)
    t0 = time.perf_counter()
    compiled = cnncompile.compile(model, shape, name=args.name, verbose=args.verbose,
                                  flags=build.PORTABLE_FLAGS if args.portable else None,
                                  batch_group=args.batch_group)
    seconds = time.perf_counter() - t0
    compiled.save(out_dir)
    print(compiled.summary())
    print(f"Compiled in {seconds:.2f}s" + (" (cached build)" if compiled.build_info["cached"] else ""))
    if not args.no_check:
        rng = np.random.default_rng(0)
        xs = [rng.standard_normal((2,) + s).astype(np.float32) for s in compiled.input_shapes]
        got, want = _leaves(compiled(*xs)), _leaves(reference.run(compiled.graph, *xs))
        err = max(float(np.max(np.abs(a - b), initial=0.0)) for a, b in zip(got, want))
        one = [x[:1] for x in xs]
        ms = compiled.profile(one[0] if len(one) == 1 else one, repeat=20,
                              warmup=3)["median_ms"]
        print(f"Check: max |compiled - numpy reference| = {err:.3g} on a random batch of 2; "
              f"{ms:.3f} ms per sample")
    lines = len(compiled.c_source.splitlines())
    p = compiled.prefix
    print(f"\nWrote {out_dir}/\n"
          f"  model.c        the generated C ({lines} lines)\n"
          f"  model.h        its interface: {p}_forward(), {p}_workspace_size()\n"
          f"  cnn_*.h        the runtime headers that model.c includes\n"
          f"  libmodel.so    shared library with a C ABI (C, ctypes or cffi)\n"
          f"  model.json     names and shapes, for cnncompile.load('{out_dir}')\n"
          f"Build it yourself: cc -O3 -c {out_dir}/model.c -I{out_dir}")
    if args.show_c:
        print("\n" + compiled.c_source)
    return 0


def _leaves(value):
    """The arrays of what a model returns (an array, or a tuple, list or dict of them)."""
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (tuple, list)):
        return [a for v in value for a in _leaves(v)]
    return [value]


def cmd_inspect(args):
    from . import frontends, passes, trace
    module, model, label = load_model(args.model)
    model, shape = frontends.to_cnncompile(model, _input_shape(args, module))
    graph = trace.trace(model, shape, *frontends.io_names(model))
    if args.dot:
        graph = passes.run(graph, after=args.after)
        print(graph.to_dot())
        return 0
    print(f"# traced from {label}, input {shape}")
    print(graph)

    def show(name, g):
        print(f"\n# after {name}")
        print(g)
    passes.run(graph, after=args.after, on_pass=show if args.all else None)
    if not args.all:
        print(f"\n# after {args.after or 'the whole pipeline'}")
        print(graph)
    print()
    print(graph.summary())
    return 0


def make_parser():
    from .passes import PASS_NAMES
    parser = argparse.ArgumentParser(prog="cnncompile", description="Compile a PyTorch-style "
                                     "CNN (written with cnncompile.nn or torch.nn, or an ONNX "
                                     "file) into fast, dependency-free C.")
    parser.add_argument("--version", action="version", version=f"cnncompile {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    model_help = ("an .onnx file, or a Python file defining the model (cnncompile.nn or "
                  "torch.nn): `model`/`Model`, the one nn.Module class or instance in it, or a "
                  "factory; FILE.py:NAME chooses")
    c = sub.add_parser("compile", help="compile a model to model.c, model.h and libmodel.so",
                       description="Compile a model, save the C and a shared library, print "
                       "the layer summary and check the result against the numpy reference.")
    c.add_argument("model", help=model_help)
    c.add_argument("--input-shape", action="append", help="N,C,H,W, e.g. 1,3,32,32 (N: any; "
                   "the compiled model takes any batch size); once per input for a model of "
                   "several, in forward()'s argument order. Default: INPUT_SHAPE in the file "
                   "(a list of shapes for several inputs), or the shapes an ONNX file declares")
    c.add_argument("-o", "--output", help="output folder (default build/<file name>)")
    c.add_argument("--name", help="prefix of the C functions (default: the model class name)")
    c.add_argument("--portable", action="store_true", help="build for any CPU of this "
                   "architecture (no -march=native)")
    c.add_argument("--no-check", action="store_true", help="skip the comparison with the "
                   "numpy reference")
    c.add_argument("--batch-group", type=int, metavar="N", help="samples of a batch that "
                   "layers with large weights compute at once (default: chosen, up to 16; 1: "
                   "one at a time, the smallest workspace, e.g. for small devices)")
    c.add_argument("--show-c", action="store_true", help="print the generated C")
    c.add_argument("-v", "--verbose", action="store_true", help="print build progress")
    c.set_defaults(func=cmd_compile)

    i = sub.add_parser("inspect", help="print the layer graph after each optimisation pass")
    i.add_argument("model", help=model_help)
    i.add_argument("--input-shape", action="append", help="N,C,H,W, once per input (default: "
                   "INPUT_SHAPE in the file)")
    i.add_argument("--after", choices=sorted(set(PASS_NAMES)), help="stop after this pass")
    i.add_argument("--all", action="store_true", help="print the graph after every pass")
    i.add_argument("--dot", action="store_true", help="print Graphviz dot instead")
    i.set_defaults(func=cmd_inspect)
    return parser


def main(argv=None):
    from .errors import BuildError, CompileError
    args = make_parser().parse_args(argv)
    try:
        return args.func(args)
    except (CliError, CompileError, BuildError, ValueError, ImportError, OSError) as exc:
        print(f"cnncompile: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
