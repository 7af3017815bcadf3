"""Reductions over per-sample dimensions: x.mean/sum/amax/amin(dim, keepdim), with negative
dims, several dims and the squeeze-and-excitation pattern."""


def reducer(method, dim, keepdim=False, linear=False):
    """A conv (or linear) layer, then ``method(dim, keepdim)`` on its output."""
    def model(nn, F, cat):
        class Reduce(nn.Module):
            def __init__(self):
                super().__init__()
                self.layer = nn.Linear(5, 6) if linear else nn.Conv2d(3, 4, 3, padding=1)

            def forward(self, x):
                return getattr(self.layer(x), method)(dim, keepdim=keepdim)
        return Reduce()
    model.__name__ = f"{method}{dim}{'_keepdim' if keepdim else ''}"
    return model


def squeeze_excite(nn, F, cat):
    """x * sigmoid(conv(x.mean((2, 3), keepdim=True))), as EfficientNet and timm write it."""
    class SqueezeExcite(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, padding=1)
            self.reduce, self.expand = nn.Conv2d(8, 4, 1), nn.Conv2d(4, 8, 1)

        def forward(self, x):
            x = self.conv(x)
            s = self.expand(F.relu(self.reduce(x.mean((2, 3), keepdim=True))))
            return x * F.sigmoid(s)
    return SqueezeExcite()


def head(nn, F, cat):
    """A classifier head: the spatial mean without keepdim, then a linear layer."""
    class Head(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.fc = nn.Conv2d(3, 6, 3), nn.Linear(6, 4)

        def forward(self, x):
            return self.fc(self.conv(x).mean([-2, -1]))
    return Head()


SHAPE = (1, 3, 5, 6)
CASES = {
    "reduce_mean": [
        (reducer("mean", 1), SHAPE),
        (reducer("mean", -1, keepdim=True), SHAPE),
        (reducer("mean", (1, 3)), SHAPE),
        (reducer("mean", (1, 2, 3), keepdim=True), SHAPE),
        (reducer("mean", (-1,), keepdim=True, linear=True), (1, 5)),
        (squeeze_excite, (1, 3, 7, 7)),
        (head, (1, 3, 6, 6)),
    ],
    "reduce_sum": [
        (reducer("sum", 1, keepdim=True), SHAPE),
        (reducer("sum", (-2, -1)), SHAPE),
        (reducer("sum", [2]), SHAPE),
        (reducer("sum", 1, linear=True), (1, 5)),
    ],
    "reduce_max": [
        (reducer("amax", 1), SHAPE),
        (reducer("amax", (2, 3), keepdim=True), SHAPE),
        (reducer("amax", (-3, -1)), SHAPE),
    ],
    "reduce_min": [
        (reducer("amin", -1), SHAPE),
        (reducer("amin", (1, 2), keepdim=True), SHAPE),
        (reducer("amin", 2), SHAPE),
    ],
}
