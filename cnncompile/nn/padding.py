"""Padding layers (ZeroPad2d, ReflectionPad2d, ...), torch.nn's signatures and reprs."""
from . import functional as F
from .module import Module


class _PadNd(Module):
    op_name = "pad"
    rank = 2
    mode = "constant"

    def __init__(self, padding, value=0.0):
        super().__init__()
        n = 2 * self.rank
        self.padding = (padding,) * n if isinstance(padding, int) else tuple(padding)
        if len(self.padding) != n:
            raise ValueError(f"{type(self).__name__}: padding must be an int or {n} ints, "
                             f"got {padding!r}")
        self.value = value

    def forward(self, x):
        return F.pad(x, self.padding, self.mode, self.value)

    def extra_repr(self):
        return f"{self.padding}"


class _ConstantPadNd(_PadNd):
    def extra_repr(self):
        return f"padding={self.padding}, value={self.value}"


def _make(name, base, rank, mode, signature_value=False):
    if signature_value:
        def __init__(self, padding, value):
            _PadNd.__init__(self, padding, value)
    else:
        def __init__(self, padding):
            _PadNd.__init__(self, padding)
    return type(name, (base,), {"rank": rank, "mode": mode, "__init__": __init__,
                                "__module__": __name__})


ZeroPad1d, ZeroPad2d, ZeroPad3d = (_make(f"ZeroPad{r}d", _PadNd, r, "constant") for r in (1, 2, 3))
ConstantPad1d, ConstantPad2d, ConstantPad3d = (
    _make(f"ConstantPad{r}d", _ConstantPadNd, r, "constant", True) for r in (1, 2, 3))
ReflectionPad1d, ReflectionPad2d, ReflectionPad3d = (
    _make(f"ReflectionPad{r}d", _PadNd, r, "reflect") for r in (1, 2, 3))
ReplicationPad1d, ReplicationPad2d, ReplicationPad3d = (
    _make(f"ReplicationPad{r}d", _PadNd, r, "replicate") for r in (1, 2, 3))
CircularPad1d, CircularPad2d, CircularPad3d = (
    _make(f"CircularPad{r}d", _PadNd, r, "circular") for r in (1, 2, 3))

__all__ = [f"{kind}Pad{r}d" for kind in ("Zero", "Constant", "Reflection", "Replication",
                                         "Circular") for r in (1, 2, 3)]
