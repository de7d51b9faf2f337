"""Where images come from: manifest CSVs, MVTec AD folders, plain folders; and the Dataset.

All listings are sorted and deterministic. A :class:`Sample` is one image with its optional
defect mask, its label (0 normal, 1 anomalous), its defect type and its split.
"""

from __future__ import annotations

import csv
import numbers
import operator
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset

from anomaly.data.decode import decode_image, decode_mask, resize
from anomaly.tiling import pad_to_tile, random_tile, scaled_shape

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
MANIFEST_COLUMNS = ("image", "mask", "label", "defect", "split")
_LABELS = {"normal": 0, "anomalous": 1, "0": 0, "1": 1}
_SPLITS = ("train", "test")


@dataclass(frozen=True)
class Sample:
    """One image and what is known about it."""

    image: Path
    mask: Path | None
    label: int  # 0 normal, 1 anomalous
    defect: str  # "good" for normals
    split: str  # "train" | "test"


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if _is_image(p)) if folder.is_dir() else []


def read_manifest(csv_path: str | Path) -> list[Sample]:
    """Read a manifest CSV with columns ``image,mask,label,defect,split``.

    Paths are relative to the CSV's folder (absolute paths are kept). ``mask`` may be empty;
    ``label`` is ``normal``/``anomalous`` (or 0/1); ``split`` is ``train``/``test``; an empty
    ``defect`` becomes ``good`` for normals and ``defect`` for anomalies.

    Raises ValueError naming the CSV and line for a missing column, an unknown label or split,
    and listing the first missing files when any image or mask does not exist.
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise ValueError(f"manifest {csv_path}: file not found")
    base = csv_path.parent
    samples: list[Sample] = []
    missing: list[str] = []
    with csv_path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = [c.strip() for c in reader.fieldnames or []]
        absent = [c for c in MANIFEST_COLUMNS if c not in columns]
        if absent:
            raise ValueError(
                f"manifest {csv_path}, line 1: missing column(s) {', '.join(absent)}; "
                f"expected header {','.join(MANIFEST_COLUMNS)}, got {','.join(columns) or 'nothing'}"
            )
        reader.fieldnames = columns
        for row in reader:
            line = reader.line_num
            where = f"manifest {csv_path}, line {line}"
            cells = {k: (row.get(k) or "").strip() for k in MANIFEST_COLUMNS}
            label = _LABELS.get(cells["label"].lower())
            if label is None:
                raise ValueError(f"{where}: unknown label {cells['label']!r}; expected normal or anomalous")
            split = cells["split"].lower()
            if split not in _SPLITS:
                raise ValueError(f"{where}: unknown split {cells['split']!r}; expected train or test")
            if not cells["image"]:
                raise ValueError(f"{where}: empty image path")
            image = base / cells["image"]
            mask = base / cells["mask"] if cells["mask"] else None
            for path in (image, mask):
                if path is not None and not path.is_file():
                    missing.append(f"line {line}: {path}")
            defect = cells["defect"] or ("good" if label == 0 else "defect")
            samples.append(Sample(image, mask, label, defect, split))
    if missing:
        raise ValueError(
            f"manifest {csv_path}: {len(missing)} file(s) not found, first: {'; '.join(missing[:5])}; "
            "paths are relative to the CSV's folder"
        )
    return samples


def scan_mvtec(root: str | Path) -> list[Sample]:
    """List an MVTec AD category folder.

    ``train/good/*`` -> train normals; ``test/good/*`` -> test normals; ``test/<defect>/*``
    -> test anomalies with mask ``ground_truth/<defect>/<stem>_mask.png`` (None if absent).
    """
    root = Path(root)
    samples = [Sample(p, None, 0, "good", "train") for p in _images_in(root / "train" / "good")]
    samples += [Sample(p, None, 0, "good", "test") for p in _images_in(root / "test" / "good")]
    test = root / "test"
    defects = sorted(d.name for d in test.iterdir() if d.is_dir() and d.name != "good") if test.is_dir() else []
    for defect in defects:
        for path in _images_in(test / defect):
            mask = root / "ground_truth" / defect / f"{path.stem}_mask.png"
            samples.append(Sample(path, mask if mask.is_file() else None, 1, defect, "test"))
    return samples


def scan_folder(root: str | Path) -> list[Sample]:
    """Every image file under ``root`` (recursive, sorted), as normal training samples."""
    root = Path(root)
    paths = sorted((p for p in root.rglob("*") if _is_image(p)), key=lambda p: p.relative_to(root).as_posix())
    return [Sample(p, None, 0, "good", "train") for p in paths]


def load_samples(path: str | Path) -> list[Sample]:
    """A ``.csv`` manifest, an MVTec AD folder (has ``train/good``) or a plain image folder."""
    path = Path(path)
    expected = "a manifest .csv, an MVTec AD folder (with train/good) or a folder of images"
    if not path.exists():
        raise ValueError(f"{path}: no such file or folder; expected {expected}")
    if path.is_file():
        if path.suffix.lower() != ".csv":
            raise ValueError(f"{path}: is a file but not a .csv manifest; expected {expected}")
        samples, looked_for = read_manifest(path), "rows in the manifest"
    elif (path / "train" / "good").is_dir():
        samples, looked_for = scan_mvtec(path), "images in the MVTec AD layout"
    else:
        samples, looked_for = scan_folder(path), f"image files ({', '.join(sorted(IMAGE_EXTENSIONS))})"
    if not samples:
        raise ValueError(f"{path}: found no {looked_for}; expected {expected}")
    return samples


def parse_image_size(text: str | int | Sequence[int]) -> tuple[int, int]:
    """``"256"`` or ``256`` -> ``(256, 256)``; ``"256x640"`` or ``(256, 640)`` -> (height, width)."""
    problem = (
        "image size must be N or HxW (height x width) with positive integers, e.g. 256 or "
        f"256x640; got {text!r}"
    )
    if isinstance(text, str):
        found = re.fullmatch(r"\s*(\d+)\s*(?:[xX,]\s*(\d+)\s*)?", text)
        if found is None:
            raise ValueError(problem)
        values = [int(found[1]), int(found[2] or found[1])]
    else:
        try:
            items = [text] if isinstance(text, numbers.Integral) else list(text)
            if any(isinstance(v, bool) for v in items):
                raise TypeError
            values = [operator.index(v) for v in items]
        except TypeError:
            raise ValueError(problem) from None
        values = values * 2 if len(values) == 1 else values
    if len(values) != 2 or min(values) <= 0:
        raise ValueError(problem)
    return values[0], values[1]


CACHE_BYTES = 4 * 2**30  # decoded training images kept in memory, at most
TILE_READS = ("random", "fixed", "none")


class ImageDataset(Dataset):
    """Samples decoded and resized for a model.

    ``__getitem__(i)`` returns a dict: ``image`` ``(C, h, w) float32`` in ``[0, 1]``;
    ``mask`` ``(1, h, w) float32`` in ``{0, 1}`` (zeros without a mask; resized like the image,
    then thresholded at 0.5); ``label`` int; ``index`` int. Decoding errors propagate as
    ``ImageDecodeError`` naming the file.

    Without ``scale`` every image is resized to ``image_size``. With ``scale`` (anomaly.tiling) each is
    resized by that factor keeping its aspect, and ``tiles`` says what a read returns: ``"random"`` a
    crop of ``image_size`` at a fresh random position (training), ``"fixed"`` one at a position seeded
    by the index (the same every epoch: validation losses), ``"none"`` the whole scaled image (its own
    size: batch them one at a time). An image smaller than a tile is padded by reflection first.

    With ``cache=True`` the resized image is kept in memory as float16 (half the memory of
    float32, error < 2.5e-4) after the first decode; every read, the first included, returns
    the float16-rounded value, so all epochs see identical inputs. The cache holds at most
    ``CACHE_BYTES`` (memory must not grow without bound with the training set); images past it are
    decoded every epoch (use ``num_workers`` then). ``cache_bytes`` is what it holds.
    """

    def __init__(self, samples: Sequence[Sample], image_size: tuple[int, int], channels: int, cache: bool = True,
                 *, scale: float | None = None, tiles: str = "random"):
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels!r}")
        if scale is not None and not (isinstance(scale, (int, float)) and 0 < scale < float("inf")):
            raise ValueError(f"scale must be a positive number (1.0: the images' own size) or None, got {scale!r}")
        if tiles not in TILE_READS:
            raise ValueError(f"tiles must be one of {', '.join(TILE_READS)}, got {tiles!r}")
        self.samples = list(samples)
        self.image_size = parse_image_size(image_size)
        self.channels, self.scale, self.tiles = channels, scale, tiles
        self.cache = cache
        self.cache_bytes = 0
        self._cache: dict[int, tuple[torch.Tensor, torch.Tensor | None]] = {}

    def __len__(self) -> int:
        return len(self.samples)

    def _size(self, shape: tuple[int, int]) -> tuple[int, int]:
        return self.image_size if self.scale is None else scaled_shape(shape, self.scale)

    def _decode(self, sample: Sample) -> tuple[torch.Tensor, torch.Tensor | None]:
        image = torch.from_numpy(decode_image(sample.image, self.channels))  # (C, H, W)
        size = tuple(image.shape[-2:])
        image = resize(image[None], self._size(size))[0]  # (C, h, w)
        if sample.mask is None:
            return image, None
        mask = torch.from_numpy(decode_mask(sample.mask))  # (H, W) bool
        if tuple(mask.shape) != size:
            raise ValueError(
                f"mask {sample.mask} is {mask.shape[0]}x{mask.shape[1]} but its image "
                f"{sample.image} is {size[0]}x{size[1]} (height x width); they must match"
            )
        mask = resize(mask[None, None].float(), self._size(size))[0] >= 0.5  # (1, h, w) bool
        return image, mask

    def _tile(self, image: torch.Tensor, mask: torch.Tensor, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """`image` (C, h, w) and `mask` (1, h, w) cut to one tile as `tiles` says (both at the same place)."""
        if self.scale is None or self.tiles == "none":
            return image, mask
        both = pad_to_tile(torch.cat([image, mask]), self.image_size)
        generator = torch.Generator().manual_seed(index) if self.tiles == "fixed" else None
        both = random_tile(both, self.image_size, generator)
        return both[:-1], both[-1:]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | int]:
        sample = self.samples[index]
        if index in self._cache:
            image, mask = self._cache[index]
        else:
            image, mask = self._decode(sample)
            if self.cache:
                image = image.to(torch.float16)
                size = image.numel() * 2 + (mask.numel() if mask is not None else 0)
                if self.cache_bytes + size <= CACHE_BYTES:
                    self._cache[index] = (image, mask)
                    self.cache_bytes += size
        image = image.float()
        image, mask = self._tile(image, mask.float() if mask is not None else torch.zeros(1, *image.shape[-2:]), index)
        return {"image": image, "mask": mask, "label": sample.label, "index": index}
