import pytest
import torch

from anomaly.config import ModelConfig
from anomaly.models import build_model
from anomaly.models.draem.loss import focal_loss
from anomaly.training import SAMPLE_MANIFEST
from anomaly.data import decode_image, load_samples, resize


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
    normals = [s for s in load_samples(str(SAMPLE_MANIFEST)) if s.label == 0][:8]
    x = torch.cat([resize(torch.from_numpy(decode_image(s.image, 1))[None], (32, 48)) for s in normals])

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
