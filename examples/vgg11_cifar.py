"""VGG-11 with batch normalisation (Simonyan & Zisserman, 2014) for 32x32 CIFAR images:
each number is a 3x3 Conv2d + BatchNorm2d + ReLU, each M a 2x2 max pooling."""
import cnncompile.nn as nn  # was: import torch.nn as nn

INPUT_SHAPE = (1, 3, 32, 32)
CONFIG = [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]


class VGG(nn.Module):
    def __init__(self, config=CONFIG, num_classes=10):
        super().__init__()
        layers, channels = [], 3
        for v in config:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(channels, v, kernel_size=3, padding=1),
                           nn.BatchNorm2d(v), nn.ReLU(inplace=True)]
                channels = v
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(512, num_classes)

    def forward(self, x):
        x = self.features(x)
        x = x.view(x.size(0), -1)
        return self.classifier(x)


model = VGG()

if __name__ == "__main__":
    from _demo import demo
    demo(model, INPUT_SHAPE)
