import pytest
import torch

from anomaly.config import ModelConfig
from anomaly.models import OPTIONS, build_model
from tests.conftest import sample_normals

NAMES = sorted(OPTIONS)


def small_config(name: str, **kw) -> ModelConfig:
    return ModelConfig(name=name, image_size=(32, 48), channels=1, width=4, depth=3, latent_dim=16, **kw)


sample_batch = sample_normals


@pytest.mark.parametrize("name", NAMES)
def test_forward_and_map_shapes_on_rectangular_input(name):
    torch.manual_seed(0)
    model = build_model(small_config(name)).eval()
    x = torch.rand(3, 1, 32, 48)
    assert model(x).shape == x.shape
    amap = model.anomaly_map(x)
    assert amap.shape == (3, 1, 32, 48)
    assert torch.isfinite(amap).all() and (amap >= 0).all()


@pytest.mark.parametrize("name", NAMES)
def test_training_loss_decreases_on_real_images(name):
    torch.manual_seed(0)
    model = build_model(small_config(name, lr=3e-3))
    if not model.automatic_optimization:
        pytest.skip("adversarial model (manual optimisation, two optimisers): see tests/models/test_family.py")
    x = sample_batch()
    optimiser = model.configure_optimizers()
    first = model.losses(x)["loss"].item()
    for _ in range(40):
        optimiser.zero_grad()
        loss = model.losses(x)["loss"]
        loss.backward()
        optimiser.step()
    assert loss.item() < 0.8 * first


@pytest.mark.parametrize("name", NAMES)
def test_seeded_construction_is_reproducible(name):
    outputs = []
    for _ in range(2):
        torch.manual_seed(123)
        outputs.append(build_model(small_config(name)).eval()(torch.ones(1, 1, 32, 48)))
    torch.manual_seed(124)
    other = build_model(small_config(name)).eval()(torch.ones(1, 1, 32, 48))
    assert torch.equal(outputs[0], outputs[1])
    assert not torch.equal(outputs[0], other)


def test_vae_forward_is_deterministic_and_its_loss_has_kl():
    torch.manual_seed(0)
    model = build_model(small_config("vae")).eval()
    x = torch.rand(2, 1, 32, 48)
    assert torch.equal(model(x), model(x))
    losses = model.losses(x)
    assert set(losses) == {"loss", "l2", "kl"} and losses["kl"] >= 0


def test_size_not_divisible_by_depth_names_the_fix():
    with pytest.raises(ValueError, match="not divisible by 2\\*\\*depth = 8"):
        build_model(ModelConfig(name="ae", image_size=(30, 48), depth=3))


def test_unknown_model_lists_the_choices():
    with pytest.raises(ValueError, match='name must be one of "ae", "dae", .*"ssim-ae", "twodec", "vae", got "nope"'):
        build_model(ModelConfig(name="nope"))
