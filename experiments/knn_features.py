"""Do our own trained networks give features that a PatchCore-style nearest-neighbour score can use? Scoring only.

    python experiments/knn_features.py --model /tmp/def8/bench-draem --seed 0 --levels 1,2 --levels 2,3 --levels 3,4

PatchCore (Roth et al. 2022, arXiv:2106.08265) scores a patch by its distance to the nearest patch feature of the
training normals, with features from an ImageNet network. Here the features come from a trained draem bundle's
segmentation U-Net (its encoder stages over [input, repair], numbered from 0, the full-size stem), so nothing is
downloaded: each listed stage is averaged over 3x3 neighbourhoods, resized to the first's size and
concatenated. The memory bank is --bank patch features drawn at random from the training normals (those the
run trained on, given its seed); an image scores its farthest patch's nearest-neighbour distance. Also
reported: the bundle's own score, and the sum of both scores standardised on the held-out normals. The test
split is read, so this is a screen: nothing is chosen from it. Rewrites its --section of experiments/RESULTS.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from benchmark import fmt, markdown_row  # noqa: E402
from results_md import write_section  # noqa: E402

from anomaly.bundle import load_bundle
from anomaly.data import AnomalyDataModule, ImageDataset, Sample, load_samples
from anomaly.detector import Detector
from anomaly.metrics import image_auroc


@torch.no_grad()
def features(model: torch.nn.Module, samples: list[Sample], levels: list[int], batch: int = 32) -> torch.Tensor:
    """(N, D, h, w): the segmenter's encoder stages `levels` for `samples`, 3x3-averaged, at the first's size."""
    net = model.net
    dataset = ImageDataset(samples, model.config.image_size, model.config.channels)
    out = []
    for start in range(0, len(dataset), batch):
        x = torch.stack([dataset[i]["image"] for i in range(start, min(start + batch, len(dataset)))])
        stages = [net.segment.stem(torch.cat([x, net.repair(x)], dim=1))]
        for down in net.segment.downs[:max(levels)]:
            stages.append(down(stages[-1]))
        out.append(neighbourhoods(stages, levels))
    return torch.cat(out)


def neighbourhoods(stages: list[torch.Tensor], levels: list[int]) -> torch.Tensor:
    """PatchCore's patch features: `stages[k]` for k in `levels`, each averaged over 3x3 neighbourhoods,
    resized to the first's size and concatenated along channels."""
    size = stages[levels[0]].shape[-2:]
    return torch.cat([F.interpolate(F.avg_pool2d(stages[k], 3, 1, 1), size=size, mode="bilinear", align_corners=False)
                      for k in levels], dim=1)


def standardised(scores: np.ndarray, normal_scores: np.ndarray) -> np.ndarray:
    """`scores` in standard deviations of `normal_scores` from their mean (to add scores of different scales)."""
    return (scores - normal_scores.mean()) / normal_scores.std()


def own_scores(bundle: str, test: list[Sample], normals: list[Sample]) -> tuple[np.ndarray, np.ndarray]:
    """The bundle's own image scores of `test`, raw and `standardised` on `normals`."""
    detector = Detector(load_bundle(bundle), source=bundle, device="cpu")
    own, own_normals = (np.array([p.score for p in detector.predict([s.image for s in chosen])])
                        for chosen in (test, normals))
    return own, standardised(own, own_normals)


def farthest_patch_distance(queries: torch.Tensor, bank: torch.Tensor) -> np.ndarray:
    """Each image's (N, D, h, w) largest distance from a patch to its nearest neighbour in `bank` (M, D)."""
    return np.array([torch.cdist(q.flatten(1).T, bank).min(dim=1).values.max().item() for q in queries])


def per_defect(test: list[Sample], scores: np.ndarray) -> str:
    labels = np.array([s.label for s in test])
    cells = []
    for defect in sorted({s.defect for s in test if s.label}):
        keep = np.array([s.label == 0 or s.defect == defect for s in test])
        cells.append(f"{defect} {image_auroc(labels[keep], scores[keep]):.3f}")
    return ", ".join(cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a draem bundle folder")
    parser.add_argument("--seed", type=int, required=True, help="its training seed (which normals it trained on)")
    parser.add_argument("--data", default="../shared/data/mtd/manifest.csv")
    parser.add_argument("--levels", action="append", required=True,
                        help="comma-separated segmenter stages, e.g. 2,3 (repeatable: one row each)")
    parser.add_argument("--bank", type=int, default=40000, help="patch features kept from the training normals")
    parser.add_argument("--section", default="accuracy-knn-features", help="RESULTS.md section")
    args = parser.parse_args()
    torch.manual_seed(0)
    bundle = load_bundle(args.model)
    model = bundle.build_model().eval()
    samples = load_samples(args.data)
    split = AnomalyDataModule(samples, bundle.config.image_size, bundle.config.channels, seed=args.seed)
    test = [s for s in samples if s.split == "test"]
    labels = np.array([s.label for s in test])
    own, own_standardised = own_scores(args.model, test, split.val_samples)
    rows = []
    for levels in ([int(k) for k in text.split(",")] for text in args.levels):
        train = features(model, split.train_samples, levels)
        patches = train.permute(0, 2, 3, 1).reshape(-1, train.shape[1])
        bank = patches[torch.randperm(len(patches))[:args.bank]]
        knn = farthest_patch_distance(features(model, test, levels), bank)
        knn_val = farthest_patch_distance(features(model, split.val_samples, levels), bank)
        both = own_standardised + standardised(knn, knn_val)
        rows.append(markdown_row([f"{args.model} (seed {args.seed})", ",".join(map(str, levels)),
                                  f"{train.shape[1]} x {train.shape[2]}x{train.shape[3]}",
                                  fmt(image_auroc(labels, own)), fmt(image_auroc(labels, knn)),
                                  fmt(image_auroc(labels, both)), per_defect(test, knn)]))
    write_section(args.section, (
        f"Test split of {args.data}, a screen (the test is read; nothing is chosen from it). kNN: the farthest "
        f"patch's distance to its nearest neighbour among {args.bank} patch features of the training normals, "
        "from the bundle's segmentation U-Net (experiments/knn_features.py); own: the bundle's score; both: "
        "the sum of the two, each standardised on the held-out normals.\n\n"
        "| bundle | stages | features (D x h x w) | own image AUROC | kNN image AUROC | both image AUROC | "
        "kNN image AUROC per defect |\n|---|---|---|---|---|---|---|\n" + "\n".join(rows)))


if __name__ == "__main__":
    main()
