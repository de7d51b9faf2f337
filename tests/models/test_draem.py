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


@pytest.mark.parametrize("seg_stride", [1, 2])
def test_map_is_a_probability_of_the_input_shape(seg_stride):
    torch.manual_seed(0)
    model = build_model(tiny(seg_stride=seg_stride)).eval()
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


def test_a_seg_stride_other_than_1_or_2_is_refused():
    with pytest.raises(ValueError, match="seg_stride must be 1 or 2, got 4"):
        build_model(tiny(seg_stride=4))


def test_unknown_option_is_named():
    with pytest.raises(ValueError, match="unknown option\\(s\\) \\['crops'\\] for model 'draem'"):
        build_model(tiny(crops=3))


sample_batch = sample_normals


def test_fit_validates_on_clean_held_out_normals_every_epoch_and_anneals_the_learning_rate():
    import lightning as L

    from anomaly.data import AnomalyDataModule
    from anomaly.training import EpochLosses

    torch.manual_seed(0)
    samples = [s for s in load_samples(str(SAMPLE_MANIFEST)) if s.label == 0][:12]
    data = AnomalyDataModule(samples, (32, 48), 1, batch_size=4, val_fraction=0.5, seed=0)
    model = build_model(tiny(schedule="cosine"))
    history = EpochLosses()
    trainer = L.Trainer(max_epochs=3, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, callbacks=[history])
    trainer.fit(model, data)
    assert all({"val/loss", "val/l2", "val/ssim", "val/focal"} <= set(epoch) for epoch in history.history)
    assert not any("synthetic" in key for epoch in history.history for key in epoch)
    clean = torch.cat([b["image"] for b in data.val_dataloader()])
    model.eval()
    with torch.no_grad():  # the held-out normals have no defect: the focal loss against an empty mask
        logits = model.net.segment(torch.cat([clean, model.net.repair(clean)], dim=1))
        expected = focal_loss(logits, torch.zeros_like(logits))
    assert float(trainer.callback_metrics["val/focal"]) == pytest.approx(float(expected), rel=1e-4)
    assert trainer.optimizers[0].param_groups[0]["lr"] < 1e-3 * 0.05  # cosine: near 0 after the last step
    constant = build_model(tiny(schedule="constant"))
    assert isinstance(constant.configure_optimizers(), torch.optim.Adam)


def test_map_is_the_segmentation_of_input_and_repair_smoothed():
    from anomaly.scoring import gaussian_blur

    torch.manual_seed(0)
    model = build_model(dataclasses.replace(tiny(), smoothing_sigma=1.5)).eval()
    x = sample_batch()[:2]
    with torch.no_grad():
        logits = model.net.segment(torch.cat([x, model.net.repair(x)], dim=1))
    torch.testing.assert_close(model.anomaly_map(x), gaussian_blur(torch.sigmoid(logits), 1.5))


@pytest.mark.parametrize("retired", ["stem", "normalize", "flips", "brightness", "p_line"])
def test_options_measured_and_not_kept_are_not_taken(retired):
    with pytest.raises(ValueError, match=f"unknown option\\(s\\) \\['{retired}'\\] for model 'draem'"):
        build_model(tiny(**{retired: 0}))


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


