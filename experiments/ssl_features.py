"""Can features learned from the normals alone, self-supervised, stand in for ImageNet's in a PatchCore-style score?

    python experiments/ssl_features.py --minutes 10 --compare /tmp/def8/bench-draem

A small CNN (four conv-BN-ReLU stages of 32, 64, 128 and 128 channels, each after the first halving the size)
learns by SimCLR's contrastive loss (Chen et al. 2020, arXiv:2002.05709): two views of the same 64x64 crop
of a training normal (each shifted by up to 8 px, flipped or turned by a quarter, its brightness and contrast
changed by up to 20%, Gaussian noise of 0.02 added) must map close together and away from the other crops of
the batch. The training time is fixed (--minutes) on this CPU, with the training normals of the run's
--seed at 128x128. Then experiments/knn_features.py's scoring is used, with these features in place of the
segmenter's: the last two stages (32x32 and 16x16 at 128x128), each averaged over 3x3 neighbourhoods, resized
to 16x16 and concatenated. A memory bank holds --bank patch features of the training normals. The farthest
patch's nearest-neighbour distance scores the image. With --compare, the bundle's own score and the sum
of both, each standardised on the held-out normals, are given too. The test split is read, so this is a
screen: nothing is chosen from it. Rewrites its --section of experiments/RESULTS.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).parent))
from benchmark import fmt, markdown_row  # noqa: E402
from knn_features import farthest_patch_distance, neighbourhoods, own_scores, per_defect, standardised  # noqa: E402
from results_md import write_section  # noqa: E402

from anomaly.data import AnomalyDataModule, ImageDataset, Sample, load_samples
from anomaly.metrics import image_auroc
from anomaly.models.draem.torch_model import conv_block

SIZE, CROP, SHIFT = (128, 128), 64, 8


class Encoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        widths = (32, 64, 128, 128)
        self.stages = nn.ModuleList([conv_block(1, widths[0])] + [nn.Sequential(nn.MaxPool2d(2), conv_block(a, b))
                                                                   for a, b in zip(widths, widths[1:])])
        self.project = nn.Sequential(nn.Linear(128, 128), nn.ReLU(inplace=True), nn.Linear(128, 64))

    def forward(self, x: Tensor) -> list[Tensor]:
        stages = [x]
        for stage in self.stages:
            stages.append(stage(stages[-1]))
        return stages[1:]

    def embed(self, x: Tensor) -> Tensor:
        return F.normalize(self.project(self(x)[-1].mean(dim=(2, 3))), dim=1)


def views(images: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Two augmented views (B, 1, CROP, CROP) of the same random crop of each image."""
    b, _, h, w = images.shape
    y = torch.randint(SHIFT, h - CROP - SHIFT + 1, (b,), generator=generator)
    x = torch.randint(SHIFT, w - CROP - SHIFT + 1, (b,), generator=generator)
    pair = []
    for _ in range(2):
        dy, dx = (torch.randint(-SHIFT, SHIFT + 1, (2, b), generator=generator))
        crops = torch.stack([images[i, :, y[i] + dy[i]:y[i] + dy[i] + CROP, x[i] + dx[i]:x[i] + dx[i] + CROP]
                             for i in range(b)])
        turns = torch.randint(0, 4, (b,), generator=generator)
        crops = torch.stack([torch.rot90(c, int(k), dims=(1, 2)) for c, k in zip(crops, turns)])
        flip = torch.rand(b, generator=generator) < 0.5
        crops = torch.where(flip[:, None, None, None], crops.flip(-1), crops)
        gain = 1 + 0.4 * (torch.rand(b, 1, 1, 1, generator=generator) - 0.5)
        offset = 0.4 * (torch.rand(b, 1, 1, 1, generator=generator) - 0.5) * crops.mean(dim=(1, 2, 3), keepdim=True)
        noise = 0.02 * torch.randn(crops.shape, generator=generator)
        pair.append((crops * gain + offset + noise).clamp(0, 1))
    return pair[0], pair[1]


def nt_xent(a: Tensor, b: Tensor, temperature: float = 0.2) -> Tensor:
    """SimCLR's loss for embeddings a, b (B, D), L2-normalised, where a[i] and b[i] are views of one crop."""
    z = torch.cat([a, b])
    similarity = z @ z.T / temperature
    similarity.fill_diagonal_(float("-inf"))
    n = len(a)
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return F.cross_entropy(similarity, targets)


def train_encoder(images: Tensor, minutes: float, batch: int = 64) -> tuple[Encoder, int]:
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    encoder = Encoder()
    optimiser = torch.optim.Adam(encoder.parameters(), lr=1e-3)
    steps, deadline = 0, time.monotonic() + 60 * minutes
    while time.monotonic() < deadline:
        chosen = torch.randint(0, len(images), (batch,), generator=generator)
        a, b = views(images[chosen], generator)
        loss = nt_xent(encoder.embed(a), encoder.embed(b))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        steps += 1
        if steps % 100 == 0:
            print(f"step {steps}: loss {loss.item():.3f}", flush=True)
    return encoder.eval(), steps


@torch.no_grad()
def features(encoder: Encoder, images: Tensor, batch: int = 32) -> Tensor:
    out = []
    for start in range(0, len(images), batch):
        stages = encoder(images[start:start + batch])
        out.append(neighbourhoods(stages, [3, 2]))  # at the last stage's size
    return torch.cat(out)


def load(samples: list[Sample]) -> Tensor:
    dataset = ImageDataset(samples, SIZE, 1)
    return torch.stack([dataset[i]["image"] for i in range(len(dataset))])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/mtd/manifest.csv")
    parser.add_argument("--seed", type=int, default=0, help="the training seed whose split of the normals is used")
    parser.add_argument("--minutes", type=float, default=10.0, help="self-supervised training time")
    parser.add_argument("--bank", type=int, default=40000, help="patch features kept from the training normals")
    parser.add_argument("--compare", help="a bundle trained with --seed: its own score, and the sum of both")
    parser.add_argument("--section", default="accuracy-ssl-features", help="RESULTS.md section")
    args = parser.parse_args()
    samples = load_samples(args.data)
    split = AnomalyDataModule(samples, SIZE, 1, seed=args.seed)
    test = [s for s in samples if s.split == "test"]
    labels = np.array([s.label for s in test])
    train, val, test_images = load(split.train_samples), load(split.val_samples), load(test)
    encoder, steps = train_encoder(train, args.minutes)
    train_features = features(encoder, train)
    patches = train_features.permute(0, 2, 3, 1).reshape(-1, train_features.shape[1])
    bank = patches[torch.randperm(len(patches), generator=torch.Generator().manual_seed(0))[:args.bank]]
    knn = farthest_patch_distance(features(encoder, test_images), bank)
    cells = [f"seed {args.seed}, {args.minutes:g} min, {steps} steps", fmt(image_auroc(labels, knn))]
    if args.compare:
        own, own_standardised = own_scores(args.compare, test, split.val_samples)
        both = own_standardised + standardised(knn, farthest_patch_distance(features(encoder, val), bank))
        cells += [fmt(image_auroc(labels, own)), fmt(image_auroc(labels, both))]
    else:
        cells += ["n/a", "n/a"]
    row = markdown_row(cells + [per_defect(test, knn)])
    write_section(args.section, (
        f"Test split of {args.data}, a screen (the test is read; nothing is chosen from it). kNN: the farthest "
        f"patch's distance to its nearest neighbour among {args.bank} patch features of the training normals, "
        "from a CNN trained self-supervised (SimCLR) on those normals alone (experiments/ssl_features.py); "
        f"own: {args.compare or 'no bundle'}'s score; both: the sum of the two, each standardised on the "
        "held-out normals.\n\n| run | kNN image AUROC | own image AUROC | both image AUROC | kNN image AUROC per "
        "defect |\n|---|---|---|---|---|\n" + row))


if __name__ == "__main__":
    main()
