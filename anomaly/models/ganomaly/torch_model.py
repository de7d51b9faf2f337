"""GANomaly (Akcay, Atapour-Abarghouei, Breckon, ACCV 2018, arXiv:1805.06725), from the
autoencoder's `Encoder`/`Decoder`: generator encoder G_E -> decoder G_D -> encoder E, and a
discriminator whose last convolutional features serve the feature-matching adversarial loss."""

from __future__ import annotations

from torch import Tensor, nn

from anomaly.models.ae.torch_model import Decoder, Encoder


class Generator(nn.Module):
    """x -> z = G_E(x) -> x_hat = G_D(z) -> z_hat = E(x_hat)."""

    def __init__(self, channels: int, image_size: tuple[int, int], width: int, depth: int, latent_dim: int):
        super().__init__()
        self.encoder1 = Encoder(channels, image_size, width, depth, latent_dim)
        self.decoder = Decoder(channels, image_size, width, depth, latent_dim)
        self.encoder2 = Encoder(channels, image_size, width, depth, latent_dim)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        z = self.encoder1(x)  # (B, latent_dim)
        x_hat = self.decoder(z)  # (B, C, H, W)
        return z, x_hat, self.encoder2(x_hat)  # z_hat: (B, latent_dim)


class Discriminator(nn.Module):
    """(B, C, H, W) -> real-vs-fake logit (B,) and the last convolutional features (B, C', h, w)."""

    def __init__(self, channels: int, image_size: tuple[int, int], width: int, depth: int):
        super().__init__()
        self.body = Encoder(channels, image_size, width, depth, out_features=1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        features = self.body.stages(x)  # (B, C', h, w)
        return self.body.fc(features.flatten(1))[:, 0], features


class Ganomaly(nn.Module):
    """forward: the reconstruction x_hat (B, C, H, W)."""

    def __init__(self, channels: int, image_size: tuple[int, int], width: int, depth: int, latent_dim: int):
        super().__init__()
        self.generator = Generator(channels, image_size, width, depth, latent_dim)
        self.discriminator = Discriminator(channels, image_size, width, depth)

    def forward(self, x: Tensor) -> Tensor:
        return self.generator(x)[1]
