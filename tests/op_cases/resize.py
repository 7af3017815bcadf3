"""interpolate: nn.Upsample and F.interpolate, every mode, by size and by scale factor."""


def functional(**kwargs):
    def model(nn, F, cat):
        class Interpolate(nn.Module):
            def forward(self, x):
                return F.interpolate(x, **kwargs)
        return Interpolate()
    model.__name__ = "interpolate_" + "_".join(f"{k}{v}" for k, v in kwargs.items())
    return model


def to_input_size(nn, F, cat):
    """A segmentation head's ending: a strided conv, then bilinear back to the input size."""
    class Head(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, stride=2, padding=1)

        def forward(self, x):
            return F.interpolate(self.conv(x), size=x.shape[-2:], mode="bilinear",
                                 align_corners=False)
    return Head()


CASES = {
    "interpolate": [
        ([("Upsample", (), dict(scale_factor=2))], (1, 3, 5, 7)),
        ([("Upsample", (), dict(scale_factor=2, mode="bilinear"))], (1, 3, 5, 7)),
        ([("Upsample", (), dict(scale_factor=2, mode="bilinear", align_corners=True))],
         (1, 3, 5, 7)),
        ([("Upsample", (), dict(size=(9, 4), mode="bilinear"))], (1, 2, 5, 7)),
        ([("Upsample", (), dict(size=(9, 4), mode="bilinear", align_corners=True))], (1, 2, 5, 7)),
        ([("Upsample", (), dict(scale_factor=1.5, mode="nearest"))], (1, 2, 7, 5)),
        ([("Upsample", (), dict(scale_factor=(1.5, 0.5), mode="nearest-exact"))], (1, 2, 7, 9)),
        ([("Upsample", (), dict(scale_factor=0.5, mode="bilinear"))], (1, 2, 9, 8)),
        ([("Upsample", (), dict(scale_factor=1.5, mode="bilinear",
                                recompute_scale_factor=True))], (1, 2, 7, 5)),
        ([("Upsample", (), dict(size=1, mode="bilinear"))], (1, 2, 4, 3)),
        ([("Upsample", (), dict(size=(6, 6)))], (1, 2, 1, 1)),
        ([("UpsamplingNearest2d", (), dict(scale_factor=3))], (1, 2, 3, 4)),
        ([("UpsamplingBilinear2d", (), dict(scale_factor=2))], (1, 2, 4, 5)),
        ([("UpsamplingBilinear2d", (), dict(size=(3, 11)))], (1, 2, 6, 5)),
        # 1-D and 3-D
        ([("Upsample", (), dict(scale_factor=2.5, mode="linear"))], (1, 3, 7)),
        ([("Upsample", (), dict(size=5, mode="linear", align_corners=True))], (1, 3, 8)),
        ([("Upsample", (), dict(scale_factor=1.5))], (1, 3, 7)),
        ([("Upsample", (), dict(scale_factor=(2, 1.5, 0.5), mode="trilinear"))], (1, 2, 3, 4, 6)),
        ([("Upsample", (), dict(size=(4, 5, 3), mode="trilinear", align_corners=True))],
         (1, 2, 3, 4, 6)),
        ([("Upsample", (), dict(scale_factor=2, mode="nearest-exact"))], (1, 2, 3, 2, 3)),
        # a large map, as the end of a segmentation head
        ([("Conv2d", (3, 8, 1), {}), ("Upsample", (), dict(scale_factor=2, mode="bilinear")),
          ("ReLU", (), {})], (1, 3, 64, 48)),
        (functional(size=(10, 3), mode="nearest"), (1, 3, 5, 7)),
        (functional(scale_factor=(2.5, 1.25), mode="bilinear"), (1, 3, 5, 7)),
        (functional(scale_factor=0.7, mode="bilinear", align_corners=True), (1, 3, 9, 11)),
        (to_input_size, (1, 3, 13, 10)),
    ],
}
