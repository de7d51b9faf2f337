"""Residual maps and image-score reductions, batched torch on any device.

Every map is ``(B, 1, H, W)`` float; every image score is ``(B,)``. Functions are differentiable
where that makes sense (``ssim_loss`` is a training loss).

References
----------
Wang, Bovik, Sheikh, Simoncelli (2004). Image quality assessment: from error visibility to
structural similarity. IEEE Trans. Image Processing 13, 600-612. doi:10.1109/TIP.2003.819861
Bergmann, Löwe, Fauser, Sattlegger, Steger (2019). Improving unsupervised defect segmentation by
applying structural similarity to autoencoders. VISAPP 2019, arXiv:1807.02011
"""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "RESIDUALS",
    "gaussian_blur",
    "gaussian_kernel1d",
    "gradient_magnitude_similarity_map",
    "image_scores",
    "l2_map",
    "msgms_map",
    "residual_map",
    "resize_map",
    "ssim_loss",
    "ssim_map",
    "ssim_score",
]

RESIDUALS = ("l2", "ssim", "ssim+l2")
_K1, _K2 = 0.01, 0.03


def _radius(sigma: float, truncate: float) -> int:
    return int(truncate * sigma + 0.5)  # as scipy.ndimage.gaussian_filter


def gaussian_kernel1d(sigma: float, truncate: float = 3.5) -> Tensor:
    """Normalised 1-D Gaussian, ``(2r + 1,)`` float32 with ``r = int(truncate * sigma + 0.5)``.

    The same taps as ``scipy.ndimage.gaussian_filter``; sums to 1.
    """
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    r = _radius(sigma, truncate)
    x = torch.arange(-r, r + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return (k / k.sum()).to(torch.float32)


@lru_cache(maxsize=64)
def _blur_matrix(n: int, sigma: float, truncate: float) -> Tensor:
    """``(n, n)`` float64 matrix ``A`` with ``A @ v`` = 1-D Gaussian filter of ``v`` in scipy's
    'reflect' mode (d c b a | a b c d | d c b a), the border reflection folded into ``A``.

    Works for any ``n`` (also a kernel radius ``r > n``: the reflected signal has period ``2 n``).
    """
    k = gaussian_kernel1d(sigma, truncate).double()
    r = (k.numel() - 1) // 2
    source = (torch.arange(n)[:, None] + torch.arange(-r, r + 1)[None, :]) % (2 * n)  # (n, 2r+1)
    source = torch.where(source >= n, 2 * n - 1 - source, source)
    matrix = torch.zeros(n, n, dtype=torch.float64)
    matrix.scatter_add_(1, source, k.expand(n, -1).contiguous())
    return matrix


def gaussian_blur(x: Tensor, sigma: float, truncate: float = 3.5) -> Tensor:
    """Separable Gaussian blur of ``x`` ``(B, C, H, W)`` float, same shape and dtype.

    Borders are padded as ``scipy.ndimage.gaussian_filter(mode='reflect')`` (symmetric, edge
    sample repeated), which ``F.pad(mode='reflect')`` is not; any image size works. Computed as
    ``A_H @ x @ A_W.T`` with banded matrices: on CPU an order of magnitude faster than
    single-channel convolutions, forward and backward. Always in ``x``'s dtype, also under autocast.
    """
    _check_4d(x, "x")
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    h, w = x.shape[-2:]
    rows = _blur_matrix(h, float(sigma), float(truncate)).to(device=x.device, dtype=x.dtype)
    cols = _blur_matrix(w, float(sigma), float(truncate)).to(device=x.device, dtype=x.dtype)
    with torch.autocast(x.device.type, enabled=False):  # mixed-precision training: SSIM needs x's precision
        return rows @ x @ cols.T


def _check_4d(x: Tensor, name: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"{name} must be 4-D (B, C, H, W), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor scaled to data_range, got {x.dtype}")


def _check_same_shape(a: Tensor, b: Tensor) -> None:
    _check_4d(a, "image_true")
    _check_4d(b, "image_test")
    if a.shape != b.shape:
        raise ValueError(
            f"image_true and image_test must have the same shape, got {tuple(a.shape)} "
            f"and {tuple(b.shape)}; resize the reconstruction to the image first"
        )


def _check_pair(a: Tensor, b: Tensor, sigma: float) -> int:
    """Validate an image pair; return the window size ``2 r + 1``."""
    _check_same_shape(a, b)
    win = 2 * _radius(sigma, 3.5) + 1
    if min(a.shape[-2:]) < win:
        raise ValueError(
            f"images of size {tuple(a.shape[-2:])} are smaller than the {win}x{win} SSIM window "
            f"of sigma={sigma}; use images of at least {win}x{win} pixels or a smaller sigma"
        )
    return win


def ssim_map(
    image_true: Tensor, image_test: Tensor, *, data_range: float = 1.0, sigma: float = 1.5,
    compute_dtype: torch.dtype = torch.float64,
) -> Tensor:
    """SSIM map of Wang et al. (2004), doi:10.1109/TIP.2003.819861, averaged over channels.

    Parameters
    ----------
    image_true, image_test : ``(B, C, H, W)`` float, values in ``[0, data_range]``;
        ``H, W >= 2 * int(3.5 * sigma + 0.5) + 1`` (11 for ``sigma=1.5``).
    data_range : the range of the values (1.0 for images in [0, 1]).
    sigma : standard deviation of the Gaussian window (truncated at 3.5 sigma).
    compute_dtype : dtype of the local statistics. float64 matches scikit-image to 2e-6; float32
        is about 2x faster and within ~2e-4 (the training loss and anomaly maps use it).

    Returns
    -------
    ``(B, 1, H, W)`` same dtype as ``image_true``, values
    in ``[-1, 1]``, 1 where the images agree. Equal to ``skimage.metrics.structural_similarity(
    ..., full=True, gaussian_weights=True, use_sample_covariance=False)``'s map at every pixel,
    borders included (K1=0.01, K2=0.03, population covariance, 'reflect' borders).
    """
    _check_pair(image_true, image_test, sigma)
    if not data_range > 0:
        raise ValueError(f"data_range must be > 0, got {data_range}")
    c = image_true.shape[1]
    # Local (co)variances as E[xy] - E[x]E[y] cancel catastrophically in float32 where a flat
    # region is far from zero (errors up to 1.3e-4 in SSIM on the sample images) unless float64.
    x, y = image_true.to(compute_dtype), image_test.to(compute_dtype)
    stats = gaussian_blur(torch.cat([x, y, x * x, y * y, x * y], dim=1), sigma)  # (B, 5C, H, W)
    ux, uy, uxx, uyy, uxy = stats.split(c, dim=1)
    vx, vy, vxy = uxx - ux * ux, uyy - uy * uy, uxy - ux * uy
    c1, c2 = (_K1 * data_range) ** 2, (_K2 * data_range) ** 2
    s = (2 * ux * uy + c1) * (2 * vxy + c2) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.mean(dim=1, keepdim=True).to(image_true.dtype)


def ssim_score(
    image_true: Tensor, image_test: Tensor, *, data_range: float = 1.0, sigma: float = 1.5
) -> Tensor:
    """Mean SSIM per image, ``(B,)``, in ``[-1, 1]``.

    As scikit-image, the mean excludes a border of ``(win_size - 1) // 2`` pixels where the window
    leaves the image (``win_size = 2 * int(3.5 * sigma + 0.5) + 1``).
    """
    win = _check_pair(image_true, image_test, sigma)
    p = (win - 1) // 2
    s = ssim_map(image_true, image_test, data_range=data_range, sigma=sigma)
    h, w = s.shape[-2:]
    return s[..., p : h - p, p : w - p].mean(dim=(1, 2, 3))


def ssim_loss(
    image_true: Tensor, image_test: Tensor, *, data_range: float = 1.0, sigma: float = 1.5
) -> Tensor:
    """Training loss ``1 - mean(ssim_map)`` over the batch and all pixels; scalar in [0, 2]."""
    return 1 - ssim_map(image_true, image_test, data_range=data_range, sigma=sigma,
                        compute_dtype=torch.float32).mean()


def l2_map(image_true: Tensor, image_test: Tensor) -> Tensor:
    """Squared error averaged over channels: ``(B, C, H, W)`` pair -> ``(B, 1, H, W)``, >= 0."""
    _check_same_shape(image_true, image_test)
    return (image_true - image_test).pow(2).mean(dim=1, keepdim=True)


def residual_map(image: Tensor, reconstruction: Tensor, kind: str, *, sigma: float = 1.5) -> Tensor:
    """Anomaly map of images against reconstructions, ``(B, 1, H, W)``; higher = more anomalous.

    ``image``, ``reconstruction``: ``(B, C, H, W)`` float in [0, 1]. ``kind`` is one of
    ``RESIDUALS``: ``"l2"`` squared error (in [0, 1]); ``"ssim"`` ``(1 - SSIM) / 2`` clipped to
    [0, 1] (Bergmann et al. 2019, arXiv:1807.02011); ``"ssim+l2"`` their mean.
    """
    if kind not in RESIDUALS:
        raise ValueError(f"unknown residual kind {kind!r}; expected one of {', '.join(RESIDUALS)}")
    if kind == "l2":
        return l2_map(image, reconstruction)
    dssim = (1 - ssim_map(image, reconstruction, sigma=sigma, compute_dtype=torch.float32)) / 2
    dssim = dssim.clamp(0, 1)
    if kind == "ssim":
        return dssim
    return (dssim + l2_map(image, reconstruction)) / 2


def image_scores(maps: Tensor, reduction: str = "max", topk: float = 0.01) -> Tensor:
    """Reduce anomaly maps ``(B, 1, H, W)`` to image scores ``(B,)``, same dtype.

    ``"max"``: the largest pixel. ``"topk"``: the mean of the ``k = max(1, round(topk * H * W))``
    largest pixels, ``0 < topk <= 1``; less sensitive to a single noisy pixel than the max.
    """
    _check_4d(maps, "maps")
    flat = maps.flatten(1)  # (B, C*H*W)
    if reduction == "max":
        return flat.amax(dim=1)
    if reduction == "topk":
        if not 0 < topk <= 1:
            raise ValueError(f"topk is a fraction of pixels and must be in (0, 1], got {topk}")
        k = max(1, round(topk * flat.shape[1]))
        return flat.topk(k, dim=1).values.mean(dim=1)
    raise ValueError(f"unknown reduction {reduction!r}; expected 'max' or 'topk'")


def resize_map(anomaly_map: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinearly resize ``(B, 1, h, w)`` maps to ``size = (H, W)``, e.g. an image's own size.

    ``align_corners=False``; antialiased when either side shrinks. Returns ``(B, 1, H, W)``.
    """
    _check_4d(anomaly_map, "anomaly_map")
    if len(size) != 2 or any(int(s) != s or s < 1 for s in size):
        raise ValueError(f"size must be two positive integers (H, W), got {size!r}")
    size = (int(size[0]), int(size[1]))
    if size == tuple(anomaly_map.shape[-2:]):
        return anomaly_map
    shrink = size[0] < anomaly_map.shape[-2] or size[1] < anomaly_map.shape[-1]
    return F.interpolate(
        anomaly_map, size=size, mode="bilinear", align_corners=False, antialias=shrink
    )


# Gradient-magnitude similarity (Xue, Zhang, Mou, Bovik 2014, GMSD, doi:10.1109/TIP.2013.2293423) and
# its multi-scale form used by RIAD (Zavrtanik, Kristan, Skočaj 2021, doi:10.1016/j.patcog.2020.107706).
_GMS_C = 170 / 255**2  # GMSD's c = 170 for 8-bit values, ~0.0026 for values in [0, 1]


def _gradient_magnitude(grey: Tensor) -> Tensor:
    """(B, 1, H, W) -> (B, 1, H, W) magnitude of the Prewitt gradient (kernels divided by 3),
    borders replicated (as ``scipy.ndimage.prewitt(mode='nearest')``)."""
    kx = torch.tensor([[1.0, 0.0, -1.0]] * 3, dtype=grey.dtype, device=grey.device) / 3
    kernels = torch.stack([kx, kx.T])[:, None]  # (2, 1, 3, 3)
    g = F.conv2d(F.pad(grey, (1, 1, 1, 1), mode="replicate"), kernels)  # (B, 2, H, W)
    return g.pow(2).sum(dim=1, keepdim=True).clamp_min(1e-30).sqrt()  # finite gradient where flat


def gradient_magnitude_similarity_map(image_true: Tensor, image_test: Tensor, *, c: float = _GMS_C) -> Tensor:
    """Gradient-magnitude similarity (GMS) of Xue et al. (2014), doi:10.1109/TIP.2013.2293423.

    ``image_true``, ``image_test``: ``(B, C, H, W)`` float in [0, 1], same shape; channels are
    averaged to grey first. Gradients are Prewitt (each kernel divided by 3) with replicated
    borders. ``GMS = (2 m_t m_r + c) / (m_t**2 + m_r**2 + c)`` with ``c = 170 / 255**2`` (GMSD's 170
    on the 8-bit scale; RIAD rounds it to 0.0026). Returns ``(B, 1, H, W)``, same dtype, in (0, 1],
    1 where the gradients agree.
    """
    _check_same_shape(image_true, image_test)
    if not c > 0:
        raise ValueError(f"c must be > 0, got {c}")
    mt = _gradient_magnitude(image_true.mean(dim=1, keepdim=True))
    mr = _gradient_magnitude(image_test.mean(dim=1, keepdim=True))
    return (2 * mt * mr + c) / (mt * mt + mr * mr + c)


def msgms_map(image_true: Tensor, image_test: Tensor, *, scales: int = 4, c: float = _GMS_C) -> Tensor:
    """Multi-scale GMS (MSGMS) of RIAD, Zavrtanik et al. (2021), doi:10.1016/j.patcog.2020.107706.

    The mean over ``scales`` levels of :func:`gradient_magnitude_similarity_map`, level ``s``
    computed on both images average-pooled ``s`` times by 2x2 (odd sizes floored) and bilinearly
    upsampled back to ``(H, W)`` (``align_corners=False``). ``image_true``, ``image_test``:
    ``(B, C, H, W)`` float in [0, 1] with ``min(H, W) >= 2**(scales - 1)``. Returns ``(B, 1, H, W)``,
    same dtype, in (0, 1], 1 where the images agree; ``1 - msgms_map`` is RIAD's anomaly map (before
    smoothing) and ``1 - mean`` its training loss. Computed in the wider dtype of the two images,
    also under autocast (in bfloat16, flat regions quantise to gradients of exactly zero).
    """
    _check_4d(image_true, "image_true")
    if int(scales) != scales or scales < 1:
        raise ValueError(f"scales must be a positive integer, got {scales!r}")
    size = tuple(image_true.shape[-2:])
    if min(size) < 2 ** (scales - 1):
        raise ValueError(
            f"images of size {size} are too small for {scales} scales (each halves the size); "
            f"use at most {max(1, min(size).bit_length())} scales or larger images"
        )
    dtype = torch.promote_types(image_true.dtype, image_test.dtype)
    a, b = image_true.to(dtype), image_test.to(dtype)
    total = torch.zeros_like(a[:, :1])
    with torch.autocast(a.device.type, enabled=False):
        for s in range(int(scales)):
            if s > 0:
                a, b = F.avg_pool2d(a, 2), F.avg_pool2d(b, 2)
            gms = gradient_magnitude_similarity_map(a, b, c=c)
            total = total + (gms if s == 0 else F.interpolate(gms, size=size, mode="bilinear", align_corners=False))
    return total / scales
