"""Image decoding, sample listings, the Dataset and the Lightning DataModule."""

from anomaly.data.datamodule import AnomalyDataModule
from anomaly.data.datasets import (
    ImageDataset,
    Sample,
    load_samples,
    parse_image_size,
    read_manifest,
    scan_folder,
    scan_mvtec,
)
from anomaly.data.decode import (
    MAX_PIXELS,
    ImageDecodeError,
    decode_image,
    decode_mask,
    guess_channels,
    image_shape,
    resize,
)

__all__ = [
    "MAX_PIXELS",
    "AnomalyDataModule",
    "ImageDataset",
    "ImageDecodeError",
    "Sample",
    "decode_image",
    "decode_mask",
    "guess_channels",
    "image_shape",
    "load_samples",
    "parse_image_size",
    "read_manifest",
    "resize",
    "scan_folder",
    "scan_mvtec",
]
