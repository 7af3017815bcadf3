"""torch.nn names that cnncompile does not compile. Using one builds a placeholder layer, so
that compiling the model reports every unsupported layer at once instead of stopping at the
first AttributeError."""
from .. import trace
from .module import Module

_classes = {}


def layer_class(name):
    """A stand-in for torch.nn.<name>: constructs with any arguments, fails when compiled."""
    if name not in _classes:
        def __init__(self, *args, **kwargs):
            Module.__init__(self)

        def forward(self, *args, **kwargs):
            return trace.record_unsupported(f"nn.{name}", list(args) + list(kwargs.values()),
                                            name=name.lower())
        _classes[name] = type(name, (Module,), {"op_name": "unsupported", "__init__": __init__,
                                                "forward": forward, "__module__": __name__})
    return _classes[name]


def function(name):
    def unsupported(*args, **kwargs):
        return trace.record_unsupported(f"F.{name}", list(args) + list(kwargs.values()),
                                        name=name)
    unsupported.__name__ = name
    return unsupported
