"""The Sequential feature extractor from "Convolutional Layers in PyTorch": 200x200 grayscale
input, a 2x2 stride-2 conv with 16 filters, then a padded 3x3 conv with 32 filters.
"""
import cnncompile.nn as nn  # was: import torch.nn as nn

INPUT_SHAPE = (1, 1, 200, 200)


class ModelName(nn.Module):
    def __init__(self):
        super(ModelName, self).__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 2, stride=2),
            nn.MaxPool2d(2, 2),
            nn.ReLU(True),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(True),
            nn.MaxPool2d(2, 2),
            nn.ReLU(True)
        )

    def forward(self, x):
        return self.features(x)


model = ModelName()

if __name__ == "__main__":
    from _demo import demo
    demo(model, INPUT_SHAPE)
