"""Elementwise math: abs, exp, log, sqrt, rsqrt, reciprocal, square, pow by a number, clamp and
clip (which become relu, relu6 or hardtanh), Softplus and Mish; alone and fused into a conv."""


def method(expr, name, conv=False):
    """A model computing ``expr(x)`` with tensor methods, after a conv if ``conv``."""
    def model(nn, F, cat):
        class Unary(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(3, 4, 3) if conv else nn.Identity()

            def forward(self, x):
                return expr(self.conv(x))
        return Unary()
    model.__name__ = name + ("_conv" if conv else "")
    return model


def both(expr, name):
    return [(method(expr, name), (1, 3, 5, 4)), (method(expr, name, conv=True), (1, 3, 6, 6))]


def layers(cls, *args):
    return [([(cls, args, {})], (1, 3, 5, 4)), ([("Conv2d", (3, 4, 3), {}), (cls, args, {})],
                                                (1, 3, 6, 6))]


CASES = {
    "abs": both(lambda x: x.abs(), "abs") + [(method(lambda x: abs(x) * 2.0, "dunder"), (1, 7))],
    "exp": both(lambda x: x.exp(), "exp"),
    "log": both(lambda x: (x.abs() + 0.1).log(), "log"),
    "erf": both(lambda x: x.erf(), "erf"),
    "sqrt": both(lambda x: x.abs().sqrt(), "sqrt"),
    "rsqrt": both(lambda x: (x.abs() + 0.5).rsqrt(), "rsqrt"),
    "reciprocal": both(lambda x: (x.abs() + 0.5).reciprocal(), "reciprocal"),
    "square": both(lambda x: x.square(), "square"),
    "pow": both(lambda x: x.pow(2), "pow2") + both(lambda x: x ** 3, "cube") + [
        (method(lambda x: x.abs() ** 0.5 + x.abs().pow(1.7), "fractional"), (1, 3, 5, 4)),
        (method(lambda x: (x.abs() + 0.5).pow(-1) + (x.abs() + 0.5) ** -0.5, "negative"), (1, 6)),
        (method(lambda x: (x.abs() + 0.5) ** -2.0 - x.pow(0) + x.pow(1), "small"), (1, 6)),
    ],
    "softplus": layers("Softplus") + layers("Softplus", 2.0, 1.0) + [
        ([("Softplus", (), dict(beta=0.5, threshold=0.5))], (1, 10))],
    "mish": layers("Mish"),
    "hardtanh": both(lambda x: x.clamp(-0.5, 0.5), "clamp") + [
        (method(lambda x: x.clamp(max=0.3), "clamp_max"), (1, 3, 5, 4)),
        (method(lambda x: x.clip(min=-0.2), "clip_min"), (1, 3, 5, 4)),
        (method(lambda x: x.clamp(1.0, -1.0), "min_above_max"), (1, 3, 5, 4)),
    ],
    "relu": both(lambda x: x.clamp(min=0), "clamp_min0"),
    "relu6": both(lambda x: x.clip(0.0, 6.0) + x.clamp(0, 6), "clip6"),
}
