"""A separable-convolution CNN, as "Convolutional Neural Network Layers in torch.nn" builds one:
a depthwise Conv2d (groups = channels) followed by a pointwise 1x1 Conv2d."""
import cnncompile.nn as nn  # was: import torch.nn as nn

INPUT_SHAPE = (1, 3, 64, 64)


class SeparableCNN(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.stem = nn.Conv2d(in_channels=3, out_channels=32, kernel_size=3, padding=1)
        # Constructing a separable convolution using nn.Conv2d
        self.depthwise1 = nn.Conv2d(in_channels=32, out_channels=32, kernel_size=3, padding=1, groups=32)
        self.pointwise1 = nn.Conv2d(in_channels=32, out_channels=128, kernel_size=1)
        self.depthwise2 = nn.Conv2d(128, 128, kernel_size=3, stride=2, padding=1, groups=128)
        self.pointwise2 = nn.Conv2d(128, 256, kernel_size=1)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(256, num_classes)

    def forward(self, x):
        x = self.relu(self.stem(x))
        x = self.relu(self.pointwise1(self.depthwise1(x)))
        x = self.relu(self.pointwise2(self.depthwise2(x)))
        return self.fc(self.flatten(self.pool(x)))


model = SeparableCNN()

if __name__ == "__main__":
    from _demo import demo
    demo(model, INPUT_SHAPE)
