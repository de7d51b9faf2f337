import dataclasses

import pytest
import torch

from anomaly.config import ModelConfig
from anomaly.models import build_model
from anomaly.models.draem.loss import focal_loss
from anomaly.training import SAMPLE_MANIFEST
from anomaly.data import load_samples
from tests.conftest import sample_normals


def tiny(**options) -> ModelConfig:
    return ModelConfig(name="draem", image_size=(32, 48), channels=1, width=4, depth=3, residual="segmentation",
                       options={"crop": 32, "seg_width": 4, "seg_depth": 2, **options})


def test_map_is_a_probability_of_the_input_shape():
    torch.manual_seed(0)
    model = build_model(tiny()).eval()
    amap = model.anomaly_map(torch.rand(2, 1, 32, 48))
    assert amap.shape == (2, 1, 32, 48) and (amap >= 0).all() and (amap <= 1).all()


def test_loss_decreases_on_sample_images_with_crops():
    torch.manual_seed(0)
    model = build_model(tiny())
    x = sample_normals(8, (32, 48))

    def loss_on_fixed_defects() -> float:  # the same synthetic defects before and after training
        model.generator = torch.Generator().manual_seed(99)
        with torch.no_grad():
            return sum(model.losses(x)["loss"].item() for _ in range(3))

    before = loss_on_fixed_defects()
    model.generator = None
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(25):
        optimiser.zero_grad()
        losses = model.losses(x)
        losses["loss"].backward()
        optimiser.step()
    assert set(losses) == {"loss", "l2", "ssim", "focal"}
    assert loss_on_fixed_defects() < 0.9 * before


def test_focal_loss_matches_its_definition():
    logits, target = torch.tensor([[[[2.0, -1.0]]]]), torch.tensor([[[[1.0, 1.0]]]])
    p = torch.sigmoid(logits)
    expected = (-(1 - p) ** 2 * torch.log(p)).mean()
    assert focal_loss(logits, target).item() == pytest.approx(expected.item(), rel=1e-6)


def test_unknown_option_is_named():
    with pytest.raises(ValueError, match="unknown option\\(s\\) \\['crops'\\] for model 'draem'"):
        build_model(tiny(crops=3))


sample_batch = sample_normals


def test_synthetic_aurocs_match_scikit_learn():
    from sklearn.metrics import roc_auc_score

    from anomaly.models.draem.lightning_model import synthetic_aurocs

    g = torch.Generator().manual_seed(0)
    masks = (torch.rand(6, 1, 8, 8, generator=g) > 0.8).float()
    masks[:2] = 0  # two clean images
    maps = torch.rand(6, 1, 8, 8, generator=g) + 0.5 * masks
    got = synthetic_aurocs(maps, masks, "max", 0.01)
    labels = masks.flatten(1).amax(1).numpy()
    assert got["val/synthetic_image_auroc"] == pytest.approx(roc_auc_score(labels, maps.flatten(1).amax(1).numpy()))
    assert got["val/synthetic_pixel_auroc"] == pytest.approx(roc_auc_score(masks.flatten().numpy(), maps.flatten().numpy()))
    assert synthetic_aurocs(maps[2:], masks[2:], "max", 0.01) == {}  # no clean image: no AUROC


def test_validation_epochs_are_evenly_spaced_and_end_at_the_last():
    from anomaly.models.draem.lightning_model import VALIDATIONS, validation_epochs

    assert validation_epochs(60) == {15, 30, 45, 60} and VALIDATIONS == 4
    assert validation_epochs(7) == {2, 4, 6, 7}
    assert validation_epochs(2) == {1, 2}


def test_fit_logs_synthetic_validation_and_anneals_the_learning_rate(monkeypatch):
    import lightning as L

    from anomaly.data import AnomalyDataModule
    from anomaly.training import EpochLosses

    monkeypatch.setattr("anomaly.models.draem.lightning_model.VALIDATIONS", 2)  # of 3 epochs: the 2nd and 3rd
    torch.manual_seed(0)
    samples = [s for s in load_samples(str(SAMPLE_MANIFEST)) if s.label == 0][:12]
    data = AnomalyDataModule(samples, (32, 48), 1, batch_size=4, val_fraction=0.5, seed=0)
    model = build_model(tiny(schedule="cosine"))
    history = EpochLosses()
    trainer = L.Trainer(max_epochs=3, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, callbacks=[history])
    trainer.fit(model, data)
    validated = [{"val/synthetic_pixel_auroc", "val/synthetic_image_auroc", "val/loss"} <= set(epoch)
                 for epoch in history.history]
    assert validated == [False, True, True]
    metrics = trainer.callback_metrics
    assert 0 <= metrics["val/synthetic_pixel_auroc"] <= 1 and 0 <= metrics["val/synthetic_image_auroc"] <= 1
    assert trainer.optimizers[0].param_groups[0]["lr"] < 1e-3 * 0.05  # cosine: near 0 after the last step
    constant = build_model(tiny(schedule="constant"))
    assert isinstance(constant.configure_optimizers(), torch.optim.Adam)


def test_validation_defects_do_not_depend_on_training_options():
    """The fixed validation recipe: two models with different options see the same defects."""
    x = sample_batch()
    a, b = build_model(tiny(p_line=0.0, sources="texture")), build_model(tiny(p_line=1.0, sources="images"))
    seen = []
    for model in (a, b):
        model.on_validation_epoch_start()
        seen.append(model.validation_defects(x)[1])
    assert torch.equal(seen[0], seen[1]) and seen[0].sum() > 0


def test_residual_other_than_segmentation_scores_the_repair_network_alone():
    from anomaly.scoring import gaussian_blur, ssim_map

    torch.manual_seed(0)
    model = build_model(dataclasses.replace(tiny(), residual="ssim", smoothing_sigma=1.0)).eval()
    x = sample_batch()[:2]
    dssim = ((1 - ssim_map(x, model.net(x), compute_dtype=torch.float32)) / 2).clamp(0, 1)
    expected = gaussian_blur(dssim, model.config.smoothing_sigma)
    assert torch.allclose(model.anomaly_map(x), expected, atol=1e-4)


def test_bad_sources_and_schedule_are_named():
    with pytest.raises(ValueError, match="sources must be one of .* got 'dtd'"):
        build_model(tiny(sources="dtd"))
    with pytest.raises(ValueError, match="schedule must be one of .* got 'step'"):
        build_model(tiny(schedule="step"))


def test_edge_crops_reach_the_image_edges():
    """Each crop's first row says where it starts: with edge_crops about a quarter of the crops start
    at the top edge and a quarter end at the bottom; uniform positions almost never do."""
    rows = torch.arange(96.).view(1, 1, 96, 1).expand(1, 1, 96, 96)
    for edge_crops, low, high in ((True, 0.15, 0.35), (False, 0.0, 0.05)):
        model = build_model(tiny(crop=32, edge_crops=edge_crops))
        generator = torch.Generator().manual_seed(0)
        tops = torch.tensor([int(model._crop(rows, generator)[0, 0, 0, 0]) for _ in range(1000)])
        assert tops.min() >= 0 and tops.max() <= 64
        for share in ((tops == 0).float().mean(), (tops == 64).float().mean()):
            assert low <= share <= high, (edge_crops, share)


def test_brightness_jitter_gives_each_image_one_gain_within_its_range():
    grey = torch.full((200, 1, 8, 8), 0.5)
    generator = torch.Generator().manual_seed(0)
    assert torch.equal(build_model(tiny())._jitter_brightness(grey, generator), grey)  # default: off
    gains = build_model(tiny(brightness=0.4))._jitter_brightness(grey, generator) / 0.5
    per_image = gains.flatten(1)
    assert (per_image == per_image[:, :1]).all()
    assert per_image.min() >= 0.6 and per_image.max() <= 1.4
    assert per_image.min() < 0.65 and per_image.max() > 1.35  # the whole range is drawn
    assert build_model(tiny(brightness=0.9))._jitter_brightness(torch.ones(4, 1, 8, 8), generator).max() == 1
    with pytest.raises(ValueError, match=r"brightness must be in \[0, 1\), got 1.5"):
        build_model(tiny(brightness=1.5))


def test_flips_mirror_each_image_each_way_about_half_the_time():
    ramp = torch.arange(48.0).view(1, 1, 6, 8).repeat(400, 1, 1, 1)  # every pixel distinct
    generator = torch.Generator().manual_seed(0)
    assert torch.equal(build_model(tiny())._flip(ramp, generator), ramp)  # default: off
    flipped = build_model(tiny(flips=True))._flip(ramp, generator)
    views = {dims: (flipped == (ramp.flip(dims) if dims else ramp)).flatten(1).all(1) for dims in
             [(), (3,), (2,), (2, 3)]}
    assert torch.stack(list(views.values())).sum(0).eq(1).all()  # each image is exactly one of the four views
    assert all(70 <= int(v.sum()) <= 130 for v in views.values()), {k: int(v.sum()) for k, v in views.items()}


def test_normalize_scales_each_image_to_one_grey_level_before_the_networks():
    torch.manual_seed(0)
    dim = 0.05 + 0.3 * torch.rand(2, 1, 32, 48)  # means about 0.2, no pixel above 0.35
    model = build_model(tiny(normalize=0.3)).eval()
    expected = dim * (0.3 / dim.mean((1, 2, 3), keepdim=True))  # brute force, nothing clipped
    assert torch.allclose(model._normalize(dim), expected)
    assert torch.allclose(model._normalize(dim).mean((1, 2, 3)), torch.full((2,), 0.3))
    # a darker and a brighter exposure of the same scene look the same to the model
    assert torch.allclose(model.anomaly_map(dim), model.anomaly_map(2 * dim), atol=1e-5)
    plain = build_model(tiny()).eval()
    plain.load_state_dict(model.state_dict())
    assert not torch.allclose(plain.anomaly_map(dim), plain.anomaly_map(2 * dim), atol=1e-3)  # off: it differs
    assert torch.equal(plain._normalize(dim), dim)
    assert model._normalize(torch.tensor([0.9, 0.01, 0.01, 0.01]).view(1, 1, 2, 2)).max() == 1  # gain 1.29: clipped


def test_normalize_gives_clean_and_damaged_the_damaged_image_gain():
    model = build_model(tiny(normalize=0.5))
    clean, damaged = torch.full((1, 1, 8, 8), 0.2), torch.full((1, 1, 8, 8), 0.2)
    damaged[..., :4, :] = 0.6  # mean 0.4: gain 1.25
    seen_clean, seen_damaged = model._as_seen(clean, damaged)
    assert torch.allclose(seen_clean, torch.full_like(clean, 0.25))
    assert torch.allclose(seen_damaged, damaged * 1.25)
    with pytest.raises(ValueError, match=r"normalize must be a grey level in \[0, 1\] \(0: off\), got 2"):
        build_model(tiny(normalize=2))


@pytest.mark.parametrize("normalize", [0.0, 0.4])
def test_synthetic_validation_scores_the_fixed_defects_with_the_deployed_map(normalize):
    torch.manual_seed(0)
    model = build_model(tiny(normalize=normalize)).eval()
    x = sample_batch()
    model.on_validation_epoch_start()
    amap, mask, losses = model.synthetic_validation(x)
    model.on_validation_epoch_start()  # the same defects again
    damaged, same_mask = model.validation_defects(x)
    assert torch.equal(mask, same_mask) and mask.sum() > 0 and set(losses) == {"loss", "l2", "ssim", "focal"}
    assert torch.allclose(amap, model.anomaly_map(damaged), atol=1e-6)  # what validation scores is what is served


def test_opacity_sets_the_lowest_blend_of_training_defects(monkeypatch):
    from anomaly.models.draem import lightning_model

    drawn = []
    real = lightning_model.synthesize
    monkeypatch.setattr(lightning_model, "synthesize", lambda *a, **k: drawn.append(k["opacity"]) or real(*a, **k))
    build_model(tiny()).losses(torch.rand(2, 1, 32, 48))
    build_model(tiny(opacity=0.1)).losses(torch.rand(2, 1, 32, 48))
    assert drawn == [(0.3, 1.0), (0.1, 1.0)]
    for bad in (0, 1.5):
        with pytest.raises(ValueError, match=rf"opacity must be in \(0, 1\], got {bad}"):
            build_model(tiny(opacity=bad))


def test_pool_stem_keeps_a_one_pixel_line_and_maps_at_the_input_size():
    """stem=pool: the networks see each 2x2 cell's mean, max and min at half the size, where a one-pixel
    line keeps its full contrast in the max channel (the mean halves it); maps come back at the input size."""
    torch.manual_seed(0)
    model = build_model(tiny(stem="pool", crop=0)).eval()
    x = torch.full((2, 1, 32, 48), 0.25)
    x[:, :, 9, :] = 0.75  # a bright line one pixel high, on an odd row
    seen = model._stem(x)
    assert seen.shape == (2, 3, 16, 24)
    mean, high, low = seen[0, 0, 4], seen[0, 1, 4], seen[0, 2, 4]  # the cells holding rows 8 and 9
    assert torch.allclose(mean, torch.tensor(0.5)) and torch.allclose(high, torch.tensor(0.75))
    assert torch.allclose(low, torch.tensor(0.25)) and torch.allclose(seen[0, :, 3], torch.tensor(0.25))
    amap = model.anomaly_map(x)
    assert amap.shape == (2, 1, 32, 48) and 0 <= amap.min() and amap.max() <= 1
    assert model(x).shape == x.shape  # the repair, in image space
    losses = build_model(tiny(stem="pool", crop=0)).losses(sample_normals(4, (32, 64)))
    assert torch.isfinite(losses["loss"]) and losses["loss"] > 0
    with pytest.raises(ValueError, match="stem must be one of .* got 'conv'"):
        build_model(tiny(stem="conv"))
    with pytest.raises(ValueError, match="must be a multiple of 16 on each side"):  # 2**depth, twice: 32x48 passes
        build_model(dataclasses.replace(tiny(stem="pool", crop=0), image_size=(40, 48)))
