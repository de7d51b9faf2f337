"""The torch backend's inference copy against the model it copies (anomaly/backends.py)."""

import pytest
import torch

from anomaly.backends import inference_copy, score_images


@pytest.mark.parametrize("name", ["draem", "ganomaly", "ssim-ae", "inpaint"])
def test_inference_copy_folds_batch_norm_and_scores_like_the_model(name):
    """BatchNorm statistics are randomised so that folding them into the convolutions matters."""
    from anomaly.config import TrainConfig
    from anomaly.models import build_model

    torch.manual_seed(0)
    config = TrainConfig(model=name, image_size=(64, 64), width=8, latent_dim=32).model_config(channels=1)
    model = build_model(config).eval()
    for bn in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        bn.running_mean.uniform_(-0.5, 0.5), bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5), bn.bias.data.uniform_(-0.2, 0.2)
    fast = inference_copy(model)
    batch = torch.rand(3, 1, 64, 64)
    (scores, maps), (fast_scores, fast_maps) = (score_images(model, config, batch),
                                                score_images(fast, config, batch.contiguous(memory_format=torch.channels_last)))
    assert maps.std() > 0 and (fast_maps - maps).abs().max() <= 1e-5 and (fast_scores - scores).abs().max() <= 1e-5
    bns = lambda m: sum(isinstance(x, torch.nn.BatchNorm2d) for x in m.modules())  # noqa: E731
    if name == "draem":
        assert bns(model) > 0 and bns(fast) == 0
    fast_pointers = {p.data_ptr() for p in fast.parameters()}
    assert not any(p.data_ptr() in fast_pointers for p in model.parameters())  # a copy: the model is untouched


@pytest.mark.parametrize("transpose", [False, True])
def test_inference_copy_folds_convolution_and_transposed_convolution(transpose):
    torch.manual_seed(0)
    conv = (torch.nn.ConvTranspose2d(3, 4, 2, stride=2) if transpose else torch.nn.Conv2d(3, 4, 3, padding=1))
    net = torch.nn.Sequential(conv, torch.nn.BatchNorm2d(4), torch.nn.ReLU()).eval()
    net[1].running_mean.uniform_(-1, 1), net[1].running_var.uniform_(0.5, 2), net[1].weight.data.uniform_(0.5, 2)
    x = torch.rand(2, 3, 8, 8)
    fast = inference_copy(net)
    assert isinstance(fast[1], torch.nn.Identity)
    with torch.no_grad():
        assert torch.allclose(fast(x.contiguous(memory_format=torch.channels_last)), net(x), atol=1e-6)
