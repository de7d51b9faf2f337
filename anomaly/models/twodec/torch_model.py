"""One encoder, two decoders (USAD; Audibert, Michiardi, Guyard, Marti, Zuluaga, KDD 2020,
doi:10.1145/3394486.3403392), convolutional: the autoencoder's `Encoder` and two `Decoder`s."""

from __future__ import annotations

from torch import Tensor, nn

from anomaly.models.ae.torch_model import Decoder, Encoder


class TwoDecoderAutoencoder(nn.Module):
    """AE1 = decoder1(encoder(x)) reconstructs; AE2 = decoder2(encoder(x)) is the adversary that
    learns to reconstruct real images well and AE1's outputs badly."""

    def __init__(self, channels: int, image_size: tuple[int, int], width: int, depth: int, latent_dim: int):
        super().__init__()
        self.encoder = Encoder(channels, image_size, width, depth, latent_dim)
        self.decoder1 = Decoder(channels, image_size, width, depth, latent_dim)
        self.decoder2 = Decoder(channels, image_size, width, depth, latent_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder1(self.encoder(x))  # AE1(x): (B, C, H, W)

    def all_reconstructions(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """AE1(x), AE2(x) and AE2(AE1(x)), each (B, C, H, W)."""
        z = self.encoder(x)  # (B, latent_dim)
        ae1 = self.decoder1(z)
        return ae1, self.decoder2(z), self.decoder2(self.encoder(ae1))
