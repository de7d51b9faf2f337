import numpy as np
import pytest
import torch
from PIL import Image

from anomaly.data import decode_image, load_samples, resize
from anomaly.synthetic import perlin_mask, perlin_noise, synthesize
from anomaly.training import SAMPLE_MANIFEST


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def normals() -> torch.Tensor:
    samples = [s for s in load_samples(str(SAMPLE_MANIFEST)) if s.label == 0][:6]
    return torch.cat([resize(torch.from_numpy(decode_image(s.image, 1))[None], (64, 64)) for s in samples])


def test_perlin_noise_is_seeded_bounded_and_continuous():
    a = perlin_noise((64, 80), (4, 5), generator=gen(1))
    assert a.shape == (64, 80) and torch.equal(a, perlin_noise((64, 80), (4, 5), generator=gen(1)))
    assert not torch.equal(a, perlin_noise((64, 80), (4, 5), generator=gen(2)))
    assert a.abs().max() <= 1.5 and a.std() > 0.1
    # gradient noise is smooth: a step of one pixel changes it far less than its range
    assert a.diff(dim=0).abs().max() < 0.2 and a.diff(dim=1).abs().max() < 0.2
    batch = perlin_noise((16, 16), (2, 2), generator=gen(1), n=3)
    assert batch.shape == (3, 16, 16) and not torch.equal(batch[0], batch[1])


def test_perlin_mask_is_binary_and_not_empty():
    for seed in range(5):
        mask = perlin_mask((48, 48), generator=gen(seed))
        assert set(mask.unique().tolist()) <= {0.0, 1.0} and mask.sum() > 0


def test_defects_change_only_masked_pixels(normals):
    damaged, masks = synthesize(normals, generator=gen(3), p_defect=1.0)
    assert damaged.shape == normals.shape and masks.shape == (6, 1, 64, 64)
    assert (masks.flatten(1).sum(1) > 0).all()
    outside = masks.expand_as(normals) == 0
    assert torch.equal(damaged[outside], normals[outside])
    assert (damaged - normals).abs()[~outside].mean() > 0.01
    assert damaged.min() >= 0 and damaged.max() <= 1


def test_clean_share_and_reproducibility(normals):
    untouched, masks = synthesize(normals, generator=gen(0), p_defect=0.0)
    assert torch.equal(untouched, normals) and masks.sum() == 0
    many = normals.repeat(20, 1, 1, 1)
    _, masks = synthesize(many, generator=gen(0), p_defect=0.5)
    share = (masks.flatten(1).sum(1) > 0).float().mean().item()
    assert 0.3 < share < 0.7
    first = synthesize(normals, generator=gen(7))
    second = synthesize(normals, generator=gen(7))
    assert all(torch.equal(a, b) for a, b in zip(first, second))


def test_gallery_artefact_shows_images_masks_and_blends(normals, tmp_path):
    """The artefact a person looks at: rows of normal | defect | mask (also docs/img/synthetic_defects.png)."""
    damaged, masks = synthesize(normals, generator=gen(5), p_defect=1.0)
    rows = [torch.cat([n[0], d[0], m[0]], dim=1) for n, d, m in zip(normals, damaged, masks)]
    grid = (torch.cat(rows, dim=0).numpy() * 255).round().astype(np.uint8)
    path = tmp_path / "synthetic_defects.png"
    Image.fromarray(grid).save(path)
    reread = np.asarray(Image.open(path))
    assert reread.shape == (6 * 64, 3 * 64)
    assert (reread[:, 128:] > 127).any() and (reread[:, 128:] < 128).any()  # the mask column shows both


def test_line_masks_are_thin_curves():
    from scipy import ndimage

    for seed in range(6):
        mask = perlin_mask((128, 128), generator=gen(seed), line=True).numpy() > 0
        assert mask.any()
        # two erosions by a 3x3 square remove (nearly) all of a curve a few pixels wide, not a blob
        square = np.ones((3, 3), bool)
        assert ndimage.binary_erosion(mask, square, iterations=2).sum() <= 0.05 * mask.sum()
    blob = perlin_mask((128, 128), generator=gen(0), min_scale=1, max_scale=1).numpy() > 0
    assert ndimage.binary_erosion(blob, square, iterations=2).sum() > 0.5 * blob.sum()


def test_sources_and_line_share(normals):
    _, lines = synthesize(normals, generator=gen(1), p_defect=1.0, p_line=1.0)
    _, blobs = synthesize(normals, generator=gen(1), p_defect=1.0, p_line=0.0)
    assert (lines.flatten(1).sum(1) > 0).all() and not torch.equal(lines, blobs)  # thinness: test above
    # "images": at full opacity a defect shows another image of the batch (rotated/flipped, shifted in
    # brightness, so compare gradients); "texture": smooth procedural noise, unlike any image
    opaque = dict(generator=gen(2), p_defect=1.0, opacity=(1.0, 1.0))
    from_images, masks = synthesize(normals, sources="images", **opaque)
    from_texture, _ = synthesize(normals, sources="texture", **opaque)
    inside = masks[:, 0] > 0
    roughness = lambda x: x[:, 0, :, 1:].sub(x[:, 0, :, :-1]).abs()[inside[:, :, 1:]].mean()  # noqa: E731
    assert roughness(from_texture) < 0.5 * roughness(from_images)
    assert roughness(from_images) > 0.5 * roughness(normals)
    with pytest.raises(ValueError, match="sources must be one of .* got 'dtd'"):
        synthesize(normals, generator=gen(0), sources="dtd")


def test_shade_defects_keep_the_texture_and_change_the_brightness(normals):
    shaded, masks = synthesize(normals, generator=gen(4), p_defect=1.0, p_shade=1.0, opacity=(1.0, 1.0))
    inside = masks.expand_as(normals) > 0
    gains = [(shaded[i][inside[i]] / normals[i][inside[i]].clamp_min(1e-3)).median().item() for i in range(6)]
    # each image's defect is one gain (up to clipping at 1), away from 1 in either direction
    assert all(g <= 0.81 or g >= 1.24 for g in gains), gains
    # a coarse blob (the largest Perlin cells), not a curve: it covers a good part of the image
    assert masks.flatten(1).mean(1).min() > 0.02
    blended, _ = synthesize(normals, generator=gen(4), p_defect=1.0, p_shade=0.0, opacity=(1.0, 1.0))
    assert not torch.equal(blended, shaded)
