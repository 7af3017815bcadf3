"""The ``cnncompile`` command.

    cnncompile compile examples/seed_simplecnn.py --input-shape 1,3,32,32 -o build/simplecnn
    cnncompile compile model.onnx -o build/model
    cnncompile inspect examples/lenet5.py --after fuse_activation
"""
import argparse
import importlib.util
import inspect
import os
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

from .version import __version__

FACTORY_NAMES = ("build_model", "make_model", "create_model", "get_model")


class CliError(Exception):
    pass


def parse_shape(text):
    from .model_io import parse_shape as parse
    try:
        shape = parse(text)
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
    from . import build, bundle, frontends, reference
    target = bundle.target("portable" if args.portable else args.target)
    threads = not args.no_threads
    module, model, label = load_model(args.model)
    shape = _input_shape(args, module)
    if module is None:
        model, shape = frontends.to_cnncompile(model, shape)
    out_dir = Path(args.output or f"build/{Path(args.model.split(':')[0]).stem}")
    inputs = "inputs" if isinstance(shape, list) else "input"
    print(f"Compiling {label} for {inputs} {shape} ...", flush=True)
    t0 = time.perf_counter()
    # built here for the check: for the target itself when it runs here, else for this CPU
    flags = build.target_flags(target.arch if target.runs_here else "-march=native", threads)
    compiled = cnncompile.compile(model, shape, name=args.name, verbose=args.verbose,
                                  flags=flags, batch_group=args.batch_group,
                                  weights=args.weights, max_memory=args.max_memory)
    seconds = time.perf_counter() - t0
    wrote = compiled.write_bundle(out_dir, target.name, threads)
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
    print(build_instructions(compiled, out_dir, wrote, target, threads))
    if args.show_c:
        print("\n" + compiled.c_source)
    return 0


def build_instructions(compiled, out_dir, wrote, target, threads):
    """What was written, and how to build and run it: the commands are the Makefile's."""
    from . import bundle
    headers = [name for name, what in wrote if name.startswith("cnn_") and name.endswith(".h")]
    listed = [(n, w) for n, w in wrote if n not in headers]
    at = next(i for i, (n, _) in enumerate(listed) if n == "model.h") + 1
    listed.insert(at, ("cnn_*.h", f"the {len(headers)} runtime headers model.c includes: "
                                  + ", ".join(headers)))
    width = max(len(name) for name, _ in listed)
    lines = [f"\nWrote {out_dir}/"]
    for name, what in listed:
        wrapped = textwrap.wrap(what, 96 - width) or [""]
        lines.append(f"  {name:<{width}}  {wrapped[0]}")
        lines += [f"  {'':<{width}}  {more}" for more in wrapped[1:]]
    commands = bundle.build_commands(target, compiled.weights_asm is not None, threads)
    libs = " ".join(w for w in ("-pthread" if threads else "", "-lm") if w)
    cc = target.cc or "cc"
    args = " ".join([f"input{i + 1 if len(compiled.input_names) > 1 else ''}.npy"
                     for i in range(len(compiled.input_names))]
                    + [f"output{i + 1 if len(compiled.output_names) > 1 else ''}.npy"
                       for i in range(len(compiled.output_names))])
    run = f"{out_dir}/model_main {args} [--bench 100]"
    if target.name == "aarch64":
        run = f"qemu-aarch64 -L /usr/aarch64-linux-gnu {run}   (or on the ARM machine)"
    elif not target.runs_here:
        run += f"   (on a {target.name} machine)"
    lines += [f"Build: make -C {out_dir}   (runs, in {out_dir}/:)"]
    lines += [f"  {c}" for c in commands]
    lines += [f"Run:   {run}",
              "       (each .npy: float32, batch first, as numpy.save writes it)",
              f"Link your own C: {cc} -O3 main.c -I{out_dir} {out_dir}/libmodel.a {libs}"]
    return "\n".join(lines)


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
    c.add_argument("--target", default="native", help="the CPU the bundle's Makefile builds "
                   "for: native (this machine's, the default), portable (any CPU of the "
                   "compiler's architecture), aarch64 (64-bit ARM, with aarch64-linux-gnu-gcc) "
                   "or a -march value such as x86-64-v3")
    c.add_argument("--portable", action="store_true", help="the same as --target portable")
    c.add_argument("--no-threads", "--no-openmp", dest="no_threads", action="store_true",
                   help="build without the thread pool: one thread per call, no pthreads "
                   "(for devices without them)")
    c.add_argument("--weights", choices=("auto", "c", "blob"), default="auto",
                   help="where the weights go: c (literals in model.c), blob (weights.bin, "
                   "linked by weights.S), auto (blob from 200,000 weights)")
    c.add_argument("--no-check", action="store_true", help="skip the comparison with the "
                   "numpy reference")
    c.add_argument("--batch-group", type=int, metavar="N", help="samples of a batch that "
                   "layers with large weights compute at once (default: chosen, up to 16; 1: "
                   "one at a time, the smallest workspace, e.g. for small devices)")
    c.add_argument("--max-memory", metavar="SIZE", help="the most memory one call may need, "
                   "e.g. 512M or 2G (default: this machine's, or its container's limit): a "
                   "model above it is refused, naming its largest buffers")
    c.add_argument("--show-c", action="store_true", help="print the generated C")
    c.add_argument("-v", "--verbose", action="store_true", help="print build progress")
    c.set_defaults(func=cmd_compile)

    i = sub.add_parser("inspect", help="print the layer graph after each optimisation pass",
                       description="Trace a model and print its layer graph: as traced, then "
                       "after the whole pass pipeline (--after PASS: after that pass; --all: "
                       "after every pass), with the layer summary. Nothing is compiled.")
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
    except BrokenPipeError:
        # the reader went away (`cnncompile inspect ... | head`): stop quietly, as `cat` does,
        # with stdout on /dev/null so that the final flush has nowhere to fail
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + 13  # killed by SIGPIPE, as the shell reports it for other tools
    except (CliError, CompileError, BuildError, ValueError, ImportError, OSError) as exc:
        print(f"cnncompile: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
