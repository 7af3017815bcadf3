"""1-D and 3-D pooling (ops/pool3d.py), and a small video model that ends in them."""


def video(nn, F, cat):
    class Video(nn.Module):
        """Conv3d -> ReLU -> MaxPool3d -> AdaptiveAvgPool3d -> flatten -> Linear."""
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv3d(3, 8, 3, padding=1)
            self.pool = nn.MaxPool3d((1, 2, 2))
            self.head = nn.AdaptiveAvgPool3d(1)
            self.fc = nn.Linear(8, 5)

        def forward(self, x):
            x = self.pool(F.relu(self.conv(x)))
            return self.fc(self.head(x).flatten(1))
    return Video()


def functional_3d(nn, F, cat):
    class Functional(nn.Module):
        """The functional forms, called as torch.nn.functional's are."""
        def forward(self, x):
            a = F.max_pool3d(x, 2, ceil_mode=True)
            a2 = F.avg_pool3d(x, 3, 2, 1, True, False, 3)
            b = F.adaptive_max_pool3d(x, (2, None, 3)) * 0.5 + F.adaptive_avg_pool3d(x, (2, 5, 3))
            c = x.flatten(2)
            d = F.max_pool1d(c, 3, 2, 1) + F.avg_pool1d(c, 3, 2, 1, count_include_pad=False)
            e = F.adaptive_avg_pool1d(c, 7) + F.adaptive_max_pool1d(c, 7)
            return cat([a.flatten(1), a2.flatten(1), b.flatten(1), d.flatten(1), e.flatten(1)], 1)
    return Functional()


CASES = {
    "max_pool3d": [
        ([("MaxPool3d", (2,), {})], (1, 3, 4, 6, 6)),
        ([("MaxPool3d", (3, 2, 1), {})], (1, 2, 5, 7, 6)),
        ([("MaxPool3d", ((1, 3, 2), (1, 2, 1)), {})], (1, 2, 3, 7, 5)),
        ([("MaxPool3d", (3,), dict(stride=1, dilation=(2, 1, 2)))], (1, 2, 6, 5, 7)),
        ([("MaxPool3d", (2, 2), dict(ceil_mode=True))], (1, 2, 5, 5, 7)),
        # ceil_mode's last window would start in the padding: torch drops it
        ([("MaxPool3d", (2, 2, 1), dict(ceil_mode=True))], (1, 2, 5, 5, 5)),
        ([("MaxPool3d", (3, 2, 1), dict(ceil_mode=True, dilation=2))], (1, 1, 8, 9, 8)),
        ([("MaxPool3d", (2,), {}), ("ReLU", (), {})], (1, 3, 4, 4, 4)),
        (video, (1, 3, 4, 8, 8)),
        (functional_3d, (1, 2, 4, 5, 6)),
    ],
    "avg_pool3d": [
        ([("AvgPool3d", (2,), {})], (1, 3, 4, 6, 6)),
        ([("AvgPool3d", (3, 2, 1), {})], (1, 2, 5, 7, 7)),
        ([("AvgPool3d", (3, 2, 1), dict(count_include_pad=False))], (1, 2, 5, 7, 7)),
        ([("AvgPool3d", (3, 2, 1), dict(ceil_mode=True))], (1, 2, 6, 8, 5)),
        ([("AvgPool3d", (3, 2, 1), dict(ceil_mode=True, count_include_pad=False))], (1, 2, 6, 8, 5)),
        ([("AvgPool3d", (2, 2, 1), dict(ceil_mode=True))], (1, 2, 5, 5, 5)),
        ([("AvgPool3d", ((1, 2, 3), (1, 1, 2)), dict(divisor_override=5))], (1, 2, 3, 6, 9)),
        ([("AvgPool3d", (3, 3, 1), dict(ceil_mode=True, divisor_override=2))], (1, 1, 7, 7, 7)),
        ([("AvgPool3d", (2,), {}), ("Hardswish", (), {})], (1, 3, 4, 4, 6)),
        ([("AvgPool3d", ((2, 3, 4),), {})], (1, 2, 2, 3, 4)),  # one window, the whole input
    ],
    "adaptive_avg_pool3d": [
        ([("AdaptiveAvgPool3d", (1,), {})], (1, 4, 3, 5, 5)),
        ([("AdaptiveAvgPool3d", ((2, 3, 2),), {})], (1, 2, 5, 7, 5)),
        ([("AdaptiveAvgPool3d", ((None, 3, None),), {})], (1, 2, 3, 10, 4)),
        ([("AdaptiveAvgPool3d", (4,), {})], (1, 2, 3, 3, 3)),  # larger than the input
    ],
    "adaptive_max_pool3d": [
        ([("AdaptiveMaxPool3d", (1,), {})], (1, 4, 3, 5, 5)),
        ([("AdaptiveMaxPool3d", ((2, 3, 4),), {})], (1, 2, 5, 10, 7)),
        ([("AdaptiveMaxPool3d", ((None, 2, 2),), {}), ("ReLU", (), {})], (1, 2, 3, 5, 5)),
    ],
    "max_pool1d": [
        ([("MaxPool1d", (2,), {})], (1, 3, 8)),
        ([("MaxPool1d", (3, 2, 1), dict(ceil_mode=True))], (1, 2, 10)),
        ([("MaxPool1d", (3,), dict(stride=1, dilation=3, padding=1))], (1, 2, 11)),
        ([("MaxPool1d", (2, 2, 1), dict(ceil_mode=True)), ("ReLU", (), {})], (1, 2, 5)),
    ],
    "avg_pool1d": [
        ([("AvgPool1d", (2,), {})], (1, 3, 8)),
        ([("AvgPool1d", (3, 2, 1), dict(count_include_pad=False))], (1, 2, 9)),
        ([("AvgPool1d", (3, 2, 1), dict(ceil_mode=True))], (1, 2, 10)),
        ([("AvgPool1d", (4, 3, 2), dict(ceil_mode=True, count_include_pad=False))], (1, 2, 10)),
        ([("AvgPool1d", (3, 1, 1), {})], (1, 2, 1)),  # one window, over the input and padding
    ],
    "adaptive_avg_pool1d": [
        ([("AdaptiveAvgPool1d", (1,), {})], (1, 4, 9)),
        ([("AdaptiveAvgPool1d", (4,), {})], (1, 2, 11)),
        ([("Conv1d", (2, 4, 3), {}), ("AdaptiveAvgPool1d", (5,), {}), ("Flatten", (), {}),
          ("Linear", (20, 3), {})], (1, 2, 9)),
    ],
    "adaptive_max_pool1d": [
        ([("AdaptiveMaxPool1d", (1,), {})], (1, 4, 9)),
        ([("AdaptiveMaxPool1d", (3,), {}), ("ReLU", (), {})], (1, 2, 10)),
    ],
}
