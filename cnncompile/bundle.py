"""The C bundle: everything a compiled model needs to build and run without Python.

``write(directory, ...)`` puts model.c, model.h, the runtime headers, weights.bin and
weights.S (large models), model_main.c (a program that runs the model on .npy files) and a
Makefile into one folder. The Makefile's recipes and the commands ``build_commands`` prints
come from one list of steps, so what the command line shows is what ``make`` runs.
"""
import math
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from .codegen import environment
from .codegen.names import readable
from .resources import runtime_dir
from .version import __version__

# the flags every build of the bundle takes; the architecture and threads come on top
BASE_CFLAGS = "-std=c11 -O3 -ffp-contract=fast -fno-trapping-math -fopenmp-simd -DCNN_OMP_SIMD"
THREADS = "-DCNN_THREADS -pthread"
THREAD_LIBS = "-pthread"
_MARCH = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


@dataclass(frozen=True)
class Target:
    name: str
    arch: str        # the -march flag, or ""
    cc: str = ""     # the compiler the Makefile names ("": make's default, cc)
    ar: str = ""
    note: str = ""

    @property
    def runs_here(self):
        """A build for this target runs on the machine that compiled the model."""
        return self.name in ("native", "portable")


def target(name):
    """native (this machine's CPU), portable (any CPU of the compiler's architecture),
    aarch64 (64-bit ARM, cross-compiled with aarch64-linux-gnu-gcc) or any -march value."""
    name = (name or "native").strip()
    if name == "native":
        return Target("native", "-march=native",
                      note="-march=native, the CPU of the machine that runs make")
    if name == "portable":
        return Target("portable", "", note="none: any CPU of the compiler's architecture "
                      "(SSE2 on x86-64, NEON on aarch64)")
    if name == "aarch64":
        return Target("aarch64", "-march=armv8-a", cc="aarch64-linux-gnu-gcc",
                      ar="aarch64-linux-gnu-ar", note="-march=armv8-a, any 64-bit ARM CPU "
                      "(NEON); CC names the cross compiler")
    if not _MARCH.match(name):
        raise ValueError(f"--target {name!r}: give native, portable, aarch64 or a -march value "
                         "such as x86-64-v3, skylake-avx512 or armv8.2-a")
    return Target(name, f"-march={name}", note=f"-march={name}")


@dataclass(frozen=True)
class Step:
    target: str
    deps: tuple
    command: str  # with make's $(VARIABLES)


def steps(blob):
    """The build, in order: each file, what it is made from, and the command."""
    headers = tuple(sorted(h.name for h in runtime_dir().glob("*.h")))
    objects = ("model.o", "weights.o") if blob else ("model.o",)
    objs = " ".join(objects)
    out = [Step("model.o", ("model.c", "model.h") + headers,
                "$(CC) $(CFLAGS) -fPIC -c model.c -o model.o")]
    if blob:
        out.append(Step("weights.o", ("weights.S", "weights.bin"),
                        "$(CC) -c weights.S -o weights.o"))
    out += [
        Step("libmodel.a", objects, f"$(AR) rcs libmodel.a {objs}"),
        Step("libmodel.so", objects,
             f"$(CC) -shared {objs} -o libmodel.so $(THREAD_LIBS) $(LDLIBS)"),
        Step("model_main.o", ("model_main.c", "model.h"),
             "$(CC) $(CFLAGS) -c model_main.c -o model_main.o"),
        Step("model_main", ("model_main.o", "libmodel.a"),
             "$(CC) model_main.o libmodel.a -o model_main $(THREAD_LIBS) $(LDLIBS)"),
    ]
    return out


def variables(tgt, threads=True):
    """make's variables as the Makefile sets them, for this machine's default compiler."""
    return {"CC": tgt.cc or "cc", "AR": tgt.ar or "ar", "ARCH": tgt.arch,
            "THREADS": THREADS if threads else "", "THREAD_LIBS": THREAD_LIBS if threads else "",
            "CFLAGS": f"{BASE_CFLAGS} $(ARCH) $(THREADS) $(EXTRA_CFLAGS)", "LDLIBS": "-lm",
            "EXTRA_CFLAGS": ""}


def expand(command, values):
    """A recipe with make's $(NAME)s replaced, as make prints it (one space between words)."""
    previous = None
    while previous != command:
        previous = command
        command = re.sub(r"\$\((\w+)\)", lambda m: values.get(m.group(1), ""), command)
    return " ".join(command.split())


def build_commands(tgt, blob, threads=True):
    """The commands ``make`` runs in the bundle's folder, in order."""
    values = variables(tgt, threads)
    return [expand(step.command, values) for step in steps(blob)]


def _ports(names, shapes, kind):
    ports = []
    for i, (name, shape) in enumerate(zip(names, shapes)):
        size = math.prod(int(d) for d in shape)
        many = len(names) > 1
        ports.append(dict(label=readable(name), dims=[int(d) for d in shape], size=size,
                          arg=f"{kind.upper()}{i + 1 if many else ''}.npy"))
    return ports


def write(directory, *, prefix, model_name, c_source, header, input_names, input_shapes,
          output_names, output_shapes, weights_bin=None, weights_asm=None, target_name="native",
          threads=True):
    """Write the bundle into ``directory``; returns [(file name, what it is)], in the order a
    reader needs them (the shared library, when there is one, is the caller's to add)."""
    tgt = target(target_name)
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    blob = weights_asm is not None
    (out / "model.c").write_text(c_source)
    (out / "model.h").write_text(header)
    headers = sorted(runtime_dir().glob("*.h"))
    for h in headers:
        shutil.copy(h, out / h.name)
    if blob:
        (out / "weights.bin").write_bytes(weights_bin)
        (out / "weights.S").write_text(weights_asm)
    env = environment()
    inputs = _ports(input_names, input_shapes, "input")
    outputs = _ports(output_names, output_shapes, "output")
    ctx = dict(model=readable(model_name), version=__version__, prefix=prefix,
               header_name="model.h", inputs=inputs, outputs=outputs)
    (out / "model_main.c").write_text(env.get_template("model_main.c.j2").render(ctx))
    plan = steps(blob)
    values = variables(tgt, threads)
    makefile = env.get_template("Makefile.j2").render(
        ctx, cc=tgt.cc, ar=tgt.ar, arch=tgt.arch, native=tgt.name == "native",
        arch_note=tgt.note, threads=values["THREADS"], thread_libs=values["THREAD_LIBS"],
        cflags=BASE_CFLAGS, steps=plan, goals=["libmodel.a", "libmodel.so", "model_main"],
        built=[s.target for s in plan])
    (out / "Makefile").write_text(makefile)
    lines = len(c_source.splitlines())
    wrote = [("model.c", f"the generated C ({lines:,} lines)"),
             ("model.h", f"its interface: {prefix}_forward(), {prefix}_workspace_size(), "
                         f"{prefix}_set_num_threads()")]
    if blob:
        wrote += [("weights.bin", f"the weights ({len(weights_bin):,} bytes)"),
                  ("weights.S", "links weights.bin into the program (assemble it with the C)")]
    wrote += [(h.name, "runtime header that model.c includes") for h in headers]
    wrote += [("model_main.c", "a program that runs the model on .npy files"),
              ("Makefile", "builds libmodel.a, libmodel.so and model_main "
                           f"(architecture: {tgt.note})")]
    return wrote
