"""GANomaly's losses (Akcay et al. 2018, arXiv:1805.06725, eq. 1-5)."""

import torch
from torch import Tensor
from torch.nn.functional import binary_cross_entropy_with_logits, l1_loss, mse_loss


def generator_losses(x: Tensor, x_hat: Tensor, z: Tensor, z_hat: Tensor, features_real: Tensor,
                     features_fake: Tensor, *, adv_weight: float, con_weight: float,
                     enc_weight: float) -> dict[str, Tensor]:
    """L_G = w_adv ||f(x) - f(x_hat)||^2 (feature matching) + w_con ||x - x_hat||_1 + w_enc ||z - z_hat||^2,
    each a mean over elements; "loss" is L_G."""
    adv = mse_loss(features_fake, features_real.detach())
    con = l1_loss(x_hat, x)
    enc = mse_loss(z_hat, z)
    return {"loss": adv_weight * adv + con_weight * con + enc_weight * enc, "adv": adv, "con": con, "enc": enc}


def discriminator_loss(logit_real: Tensor, logit_fake: Tensor) -> Tensor:
    """Binary cross-entropy, real images labelled 1 and reconstructions 0, averaged over the two."""
    return (binary_cross_entropy_with_logits(logit_real, torch.ones_like(logit_real))
            + binary_cross_entropy_with_logits(logit_fake, torch.zeros_like(logit_fake))) / 2


def latent_error(z: Tensor, z_hat: Tensor) -> Tensor:
    """GANomaly's anomaly score, (B, latent_dim) pair -> (B,): mean squared latent difference."""
    return (z - z_hat).pow(2).mean(dim=1)
