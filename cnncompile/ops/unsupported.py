"""A layer, function or tensor method that cnncompile cannot compile (nn.LSTM, F.interpolate,
x.permute...). Tracing records it and goes on, so that one error lists every such layer."""
from ..errors import UnsupportedError, layer_error
from . import Op, register


@register
class Unsupported(Op):
    name = "unsupported"
    arity = None

    def infer_shape(self, node, ins):
        self.check_attrs(node)

    def check_attrs(self, node):
        hint = node.attrs.get("hint")
        raise layer_error(node, f"{node.attrs['what']} is not supported by cnncompile"
                          + (f"; {hint}" if hint else ""), UnsupportedError)

    def reference(self, node, arrays):
        self.infer_shape(node, [])
