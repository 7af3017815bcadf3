"""Network from deeplizard's "CNN Layers" lesson, with the forward pass the lesson goes on to
write: relu + 2x2 max pooling after each conv, relu after fc1 and fc2. Fashion-MNIST sized.
"""
import cnncompile.nn as nn  # was: import torch.nn as nn
import cnncompile.nn.functional as F  # was: import torch.nn.functional as F

INPUT_SHAPE = (1, 1, 28, 28)


class Network(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels=1, out_channels=6, kernel_size=5)
        self.conv2 = nn.Conv2d(in_channels=6, out_channels=12, kernel_size=5)

        self.fc1 = nn.Linear(in_features=12 * 4 * 4, out_features=120)
        self.fc2 = nn.Linear(in_features=120, out_features=60)
        self.out = nn.Linear(in_features=60, out_features=10)

    def forward(self, t):
        t = F.relu(self.conv1(t))
        t = F.max_pool2d(t, kernel_size=2, stride=2)

        t = F.relu(self.conv2(t))
        t = F.max_pool2d(t, kernel_size=2, stride=2)

        t = t.reshape(-1, 12 * 4 * 4)
        t = F.relu(self.fc1(t))
        t = F.relu(self.fc2(t))
        t = self.out(t)
        return t


model = Network()

if __name__ == "__main__":
    from _demo import demo
    demo(model, INPUT_SHAPE)
