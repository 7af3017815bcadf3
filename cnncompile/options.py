"""Compile options as one typed object: what compile() was asked for, read by the passes
(graph.options) and by code generation, instead of loose keys in graph.meta."""
from dataclasses import dataclass, field

WEIGHTS_MODES = ("auto", "c", "blob")


@dataclass(frozen=True)
class CompileOptions:
    kernels: dict = field(default_factory=dict)  # layer name -> kernel name (overrides)
    skip_passes: tuple = ()     # names of passes not to run (for testing)
    weights: str = "auto"       # "c", "blob" or "auto" (codegen.generate)
    num_threads: int = None     # threads per call; None: OMP_NUM_THREADS or every core
    batch_group: int = None     # samples per group for layers that compute groups; None: auto

    def __post_init__(self):
        kernels = self.kernels if self.kernels is not None else {}
        if not hasattr(kernels, "items") or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in kernels.items()):
            raise TypeError(f"kernels={self.kernels!r}: give a dict of layer name -> kernel "
                            "name, e.g. {'conv1': 'nchw.direct'}; compiled.summary() shows "
                            "each layer's kernel")
        object.__setattr__(self, "kernels", dict(kernels))
        object.__setattr__(self, "skip_passes", tuple(self.skip_passes or ()))
        if self.weights not in WEIGHTS_MODES:
            raise ValueError(f"weights={self.weights!r}: use 'auto', 'c' or 'blob'")
