"""LeNet-5 (LeCun et al., 1998) as commonly written for 28x28 MNIST digits."""
import cnncompile.nn as nn  # was: import torch.nn as nn

INPUT_SHAPE = (1, 1, 28, 28)


class LeNet5(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, kernel_size=5), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
            nn.Linear(120, 84), nn.ReLU(),
            nn.Linear(84, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


model = LeNet5()

if __name__ == "__main__":
    from _demo import demo
    demo(model, INPUT_SHAPE)
