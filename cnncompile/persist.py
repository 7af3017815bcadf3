"""How a CompiledModel leaves its process: the C bundle save() writes, and pickles.

A pickle holds the model's C source, weights, shapes and the build flags, with a BLAKE2b
digest of them all; unpickling checks the digest and that the runtime headers are the ones the
source was generated for, then builds (or finds in the build cache) and loads the library.
"""
import contextlib
import hashlib
import json
import shutil
from pathlib import Path

from . import build as _build
from . import bundle
from .codegen import CSource
from .resources import runtime_dir

PICKLE_FORMAT = 1


def pickle_state(model):
    """What a CompiledModel pickles as: its C, weights and shapes, and their digest."""
    if model.c_source is None:
        raise TypeError(f"{model.prefix}: a model loaded from a shared library alone does not "
                        "pickle; save it with its source (CompiledModel.save) and load that")
    weights_bin = None
    if model.weights_asm is not None:
        weights_bin = (model.path.parent / "weights.bin").read_bytes()
    state = {"format": PICKLE_FORMAT, "prefix": model.prefix, "model_name": model.model_name,
             "c_source": model.c_source, "header": model.header, "cdef": model.cdef,
             "weights_asm": model.weights_asm, "weights_bin": weights_bin,
             "weights_key": model._weights_key, "input_shape": list(model.input_shapes[0]),
             "output_shape": list(model.output_shapes[0]),
             "workspace_bytes": model.workspace_bytes, "ports": model._ports, "io": model._io,
             "flags": model.build_info.get("flags"), "num_threads": model._num_threads_given,
             "runtime": runtime_digest()}
    state["digest"] = state_digest(state)
    return state


def write_bundle(model, directory, target="native", threads=True):
    """CompiledModel.save(): returns [(file name, what it is)] for every file written."""
    if model.c_source is None:
        raise ValueError("this model was loaded from a shared library; there is no source "
                         "to save: save it from the model cnncompile.compile() returns")
    tgt = bundle.target(target)
    out = Path(directory)
    weights_bin = None
    if model.weights_asm is not None:
        weights_bin = (model.path.parent / "weights.bin").read_bytes()
    wrote = bundle.write(out, prefix=model.prefix, model_name=model.model_name,
                         c_source=model.c_source, header=model.header,
                         input_names=model.input_names, input_shapes=model.input_shapes,
                         output_names=model.output_names, output_shapes=model.output_shapes,
                         weights_bin=weights_bin, weights_asm=model.weights_asm,
                         target_name=tgt.name, threads=threads)
    library = out / "libmodel.so"
    here = model.path is not None and library.resolve() == model.path.resolve()
    matches = (model.path is not None
               and model.build_info.get("flags") == bundle_flags(tgt, threads))
    if not here:
        with contextlib.suppress(FileNotFoundError):
            library.unlink()  # a library from an earlier save may be for another target
        if matches:
            shutil.copy(model.path, library)
    if matches:
        wrote.append(("libmodel.so", "shared library with a C ABI, built (C, ctypes or "
                                     "cffi; make builds it again)"))
    meta = {"prefix": model.prefix, "input_shape": list(model.input_shape),
            "output_shape": list(model.output_shape), "workspace_bytes": model.workspace_bytes,
            "target": tgt.name, "threads": bool(threads)}
    if model._io is not None:
        inputs, outputs = model._ports
        meta.update(inputs=inputs, outputs=outputs, io=model._io)
    (out / "model.json").write_text(json.dumps(meta, indent=2) + "\n")
    wrote.append(("model.json", f"names and shapes, for cnncompile.load('{out}')"))
    return wrote


def runtime_digest():
    """The runtime headers a model's C is built with: a pickle from another version of them
    would build a different program."""
    h = hashlib.blake2b(digest_size=16)
    for f in sorted(runtime_dir().glob("*.h")):
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def state_digest(state):
    """BLAKE2b of everything a pickled model builds from and claims, but the digest itself."""
    h = hashlib.blake2b(digest_size=32)
    for key in sorted(k for k in state if k != "digest"):
        value = state[key]
        data = value if isinstance(value, bytes) else json.dumps(value, sort_keys=True).encode()
        h.update(key.encode() + b"\0" + data + b"\0")
    return h.hexdigest()


def from_pickle(cls, state):
    """A pickled CompiledModel: checked against its digest, built (or found in this process's
    build cache) and loaded. Unpickling runs a C compiler on the pickle's source: unpickle only
    what you trust, as with any pickle."""
    if not isinstance(state, dict) or state.get("format") != PICKLE_FORMAT:
        raise ValueError("not a pickled cnncompile model of this version's format; pickle it "
                         "again with this cnncompile")
    if state.get("digest") != state_digest(state):
        raise ValueError(f"the pickled model {state.get('prefix')!r} does not match the hash of "
                         "its source and weights: it was altered or damaged; refusing to build it")
    if state["runtime"] != runtime_digest():
        raise ValueError(f"the pickled model {state['prefix']!r} was made by another version of "
                         "cnncompile (its runtime headers differ): install the same cnncompile "
                         "where it is unpickled")
    blob = state["weights_bin"]
    weights_key = state["weights_key"] or (
        None if blob is None else hashlib.blake2b(blob, digest_size=32).hexdigest())
    inputs, outputs = state["ports"]
    source = CSource(state["prefix"], state["c_source"], state["header"], state["cdef"],
                     tuple(state["input_shape"]), tuple(state["output_shape"]),
                     state["workspace_bytes"], state["weights_asm"], weights_key=weights_key,
                     pack_weights=None if blob is None else (lambda: blob),
                     inputs=inputs, outputs=outputs, io=state["io"])
    artifact = _build.build(source, flags=state["flags"])
    module = _build.load_module(artifact)
    model = cls(source.prefix, source.input_shape, source.output_shape,
                source.workspace_bytes, module.lib, module.ffi, c_source=source.c_source,
                header=source.header, path=artifact.library,
                build_info={"cached": artifact.cached, "flags": state["flags"],
                            "directory": str(artifact.directory)},
                weights_asm=source.weights_asm, num_threads=state["num_threads"],
                inputs=inputs, outputs=outputs, io=state["io"], cdef=source.cdef,
                weights_key=state["weights_key"])
    model.model_name = state["model_name"]
    return model


def bundle_flags(tgt, threads=True):
    """The flags of this package's own build of a model for target ``tgt``."""
    return _build.target_flags(tgt.arch, threads)
