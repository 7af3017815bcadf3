"""The quiz from "Convolutional Layers in PyTorch": a 130x130 RGB image through
Conv2d(3, 10, 3), MaxPool2d(4, 4), Conv2d(10, 20, 5, padding=2), MaxPool2d(2, 2).
The summary answers the quiz: the output is 20 x 16 x 16 = 5120 values per image.
"""
import cnncompile.nn as nn  # was: import torch.nn as nn

INPUT_SHAPE = (1, 3, 130, 130)

model = nn.Sequential(
    nn.Conv2d(3, 10, 3),
    nn.MaxPool2d(4, 4),
    nn.Conv2d(10, 20, 5, padding=2),
    nn.MaxPool2d(2, 2),
)

if __name__ == "__main__":
    from _demo import demo
    demo(model, INPUT_SHAPE)
