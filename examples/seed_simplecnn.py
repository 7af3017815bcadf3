"""SimpleCNN from "Convolutional Neural Network Layers in torch.nn", unchanged but for the import.

Run it:  python examples/seed_simplecnn.py
It compiles the model to C, calls it on a batch, checks the result against the numpy
reference, and prints the layer summary and the generated C.
"""
import cnncompile.nn as nn  # was: import torch.nn as nn

INPUT_SHAPE = (1, 3, 32, 32)


# Example of a simple Convolutional Neural Network
class SimpleCNN(nn.Module):
    def __init__(self):
        super(SimpleCNN, self).__init__()
        self.conv1 = nn.Conv2d(in_channels=3, out_channels=32, kernel_size=3, stride=1, padding=1)
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2, padding=0)
        self.relu = nn.ReLU()
        self.fc1 = nn.Linear(32 * 16 * 16, 10)  # Assuming input images are 32x32 RGB

    def forward(self, x):
        x = self.conv1(x)
        x = self.pool(x)
        x = self.relu(x)
        x = x.view(-1, 32 * 16 * 16)  # Flatten the tensor for the fully connected layer
        x = self.fc1(x)
        return x


# Instantiate the model
model = SimpleCNN()


if __name__ == "__main__":
    import numpy as np

    import cnncompile
    from cnncompile import reference

    compiled = cnncompile.compile(model.eval(), input_shape=INPUT_SHAPE)
    x = np.random.default_rng(0).random((8, 3, 32, 32), dtype=np.float32)
    y = compiled(x)  # any batch size
    err = np.abs(y - reference.run(compiled.graph, x)).max()
    print(compiled.summary())
    print(f"\noutput {y.shape}, max |compiled - numpy reference| = {err:.3g}")
    print(f"\n---- generated C ({compiled.path.parent / 'model.c'}) ----")
    print(compiled.c_source[:compiled.c_source.index("/* w_")])  # the code; weights follow
