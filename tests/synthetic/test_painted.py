"""Painted validation defects (anomaly.painted): what they change, and the AUROCs measured on them."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from anomaly import painted
from anomaly.data import load_samples
from anomaly.painted import RECIPES, mark, painted_validation


@pytest.mark.parametrize("kind", ["scratch", "stain", "hole", "hairline"])
def test_a_mark_shifts_brightness_where_its_mask_is(kind):
    shift, mask = mark((256, 256), np.random.default_rng(0), kind, (128.0, 128.0))
    assert shift.shape == mask.shape == (256, 256) and mask.any()
    assert np.abs(shift[mask]).min() > 0.02  # at least a quarter strength of a 0.1 shift
    assert (shift[~mask] == 0).mean() > 0.9  # only a blurred rim outside the mask
    assert len(set(np.sign(shift[shift != 0]))) == 1  # brighter or darker, not both


def test_an_unknown_kind_is_named():
    with pytest.raises(ValueError, match="cannot paint a 'dent': one of scratch, stain, hole, hairline"):
        mark((64, 64), np.random.default_rng(0), "dent", (32.0, 32.0))


@pytest.mark.parametrize("name", list(RECIPES))
def test_recipes_damage_about_half_the_images_alike_in_every_channel(name):
    clean = torch.full((40, 3, 128, 128), 0.5)
    damaged, masks = RECIPES[name](clean, torch.Generator(), np.random.default_rng(1))
    changed = (damaged != clean).flatten(1).any(1)
    assert masks.shape == (40, 1, 128, 128)
    assert torch.equal(changed, masks.flatten(1).any(1)) and 10 <= changed.sum() <= 30
    assert torch.equal(damaged[:, 0], damaged[:, 1]) and torch.equal(damaged[:, 0], damaged[:, 2])
    again, _ = RECIPES[name](clean, torch.Generator(), np.random.default_rng(1))
    assert torch.equal(damaged, again)


@pytest.fixture(scope="module")
def flat_normals(tmp_path_factory):
    """40 flat mid-grey PNGs: a painted defect is then exactly where the image is not 0.5."""
    folder = tmp_path_factory.mktemp("flat")
    for i in range(40):
        Image.fromarray(np.full((64, 64), 128, np.uint8)).save(folder / f"{i:02d}.png")
    return load_samples(folder)


def scorer(maps_of):
    """A detector-shaped reference: `maps_of(batch)` gives its maps, their means its scores; no weights, so no
    reconstruction spread."""
    def score_batch(batch):
        maps = maps_of(batch)
        return maps.flatten(1).mean(1), maps
    return SimpleNamespace(config=SimpleNamespace(image_size=(256, 256), channels=1, scale=None), score_batch=score_batch,
                           has_weights=False)


def test_an_oracle_scores_one_and_noise_scores_a_half(flat_normals):
    oracle = scorer(lambda batch: (batch - 128 / 255).abs())
    perfect = painted_validation(oracle, flat_normals, seed=0, val_fraction=0.5)
    assert set(perfect) == {f"{r}_{level}_auroc" for r in RECIPES for level in ("image", "pixel")}
    assert perfect["drawn_image_auroc"] == perfect["thin_image_auroc"] == 1.0
    assert perfect["drawn_pixel_auroc"] > 0.95 and perfect["thin_pixel_auroc"] > 0.95
    noise = torch.Generator().manual_seed(0)
    random = painted_validation(scorer(lambda batch: torch.rand(batch.shape, generator=noise)), flat_normals,
                                seed=0, val_fraction=0.5)
    assert all(abs(v - 0.5) < 0.25 for k, v in random.items() if "image" in k)
    assert all(abs(v - 0.5) < 0.02 for k, v in random.items() if "pixel" in k)


def test_the_summary_warns_when_drawn_defects_are_not_told_apart(flat_normals):
    oracle = painted_validation(scorer(lambda batch: (batch - 128 / 255).abs()), flat_normals, seed=0,
                                val_fraction=0.5)
    inverted = painted_validation(scorer(lambda batch: -(batch - 128 / 255).abs()), flat_normals, seed=0,
                                  val_fraction=0.5)
    assert inverted["drawn_image_auroc"] == 0.0
    assert "drawn 1.000 / " in painted.summary(oracle) and "Warning" not in painted.summary(oracle)
    assert "drawn 0.000 / " in painted.summary(inverted)
    assert f"Warning: drawn image AUROC under {painted.WEAK_AUROC}" in painted.summary(inverted)
    assert painted.summary({}) == ""


def test_fewer_than_two_held_out_images_give_no_aurocs(flat_normals):
    oracle = scorer(lambda batch: (batch - 128 / 255).abs())
    assert painted_validation(oracle, flat_normals[:3], seed=0, val_fraction=0.2) == {}


def test_at_most_max_images_are_scored(flat_normals, monkeypatch):
    monkeypatch.setattr(painted, "MAX_IMAGES", 16)
    seen = []
    oracle = scorer(lambda batch: seen.append(len(batch)) or (batch - 128 / 255).abs())
    assert painted_validation(oracle, flat_normals, seed=0, val_fraction=0.5)["drawn_image_auroc"] == 1.0
    assert seen == [16] * (len(painted.RECIPES) * painted.DRAWS)  # 20 held out, in batches of 16 and 4
