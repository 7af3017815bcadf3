"""A convolutional autoencoder for 28x28 images: strided convolutions down to 32 x 7 x 7, and
ConvTranspose2d back up to the image, with a sigmoid for pixel values in [0, 1]."""
import cnncompile.nn as nn  # was: import torch.nn as nn

INPUT_SHAPE = (1, 1, 28, 28)


class ConvAutoencoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 16, 3, stride=2, padding=1), nn.ReLU(),   # 16 x 14 x 14
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),  # 32 x 7 x 7
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(32, 16, 2, stride=2), nn.ReLU(),    # 16 x 14 x 14
            nn.ConvTranspose2d(16, 1, 2, stride=2), nn.Sigmoid(),  # 1 x 28 x 28
        )

    def forward(self, x):
        return self.decoder(self.encoder(x))


model = ConvAutoencoder()

if __name__ == "__main__":
    from _demo import demo
    demo(model, INPUT_SHAPE)
