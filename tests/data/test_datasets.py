"""Manifest, MVTec and folder listings, image-size parsing, the Dataset."""

import csv
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from anomaly.data import (
    ImageDataset,
    ImageDecodeError,
    Sample,
    load_samples,
    parse_image_size,
    read_manifest,
    scan_folder,
    scan_mvtec,
)

MANIFEST = Path(__file__).parents[2] / "anomaly/sample/manifest.csv"


def _png(path: Path, value: int = 100, size=(6, 8), mode="L") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, (size[1], size[0]), value).save(path)
    return path


def test_read_manifest_matches_csv():
    with MANIFEST.open() as f:
        rows = list(csv.DictReader(f))
    samples = read_manifest(MANIFEST)
    assert len(samples) == len(rows)
    expected = Counter((r["split"], 0 if r["label"] == "normal" else 1) for r in rows)
    assert Counter((s.split, s.label) for s in samples) == expected
    assert all(s.image.is_file() and s.image.is_absolute() == MANIFEST.is_absolute() for s in samples)
    assert sum(s.mask is not None for s in samples) == sum(bool(r["mask"]) for r in rows)
    assert {s.defect for s in samples if s.label == 0} == {"good"}


BAD_ROWS = {
    "label": ("a.png,,weird,good,train", r"line 3: unknown label 'weird'"),
    "split": ("a.png,,normal,good,val", r"line 3: unknown split 'val'"),
    "empty image": (",,normal,good,train", r"line 3: empty image path"),
}


@pytest.mark.parametrize("problem", list(BAD_ROWS))
def test_read_manifest_errors_name_csv_and_line(tmp_path, problem):
    _png(tmp_path / "a.png")
    row, message = BAD_ROWS[problem]
    csv_path = tmp_path / "m.csv"
    csv_path.write_text(f"image,mask,label,defect,split\na.png,,normal,good,train\n{row}\n")
    with pytest.raises(ValueError, match=message) as info:
        read_manifest(csv_path)
    assert str(csv_path) in str(info.value)


def test_read_manifest_missing_column_and_files(tmp_path):
    csv_path = tmp_path / "m.csv"
    csv_path.write_text("image,label,split\na.png,normal,train\n")
    with pytest.raises(ValueError, match=r"line 1: missing column\(s\) mask, defect"):
        read_manifest(csv_path)
    _png(tmp_path / "a.png")
    csv_path.write_text("image,mask,label,defect,split\na.png,,normal,,train\nb.png,,normal,,train\n"
                        "a.png,c.png,anomalous,,test\n")
    with pytest.raises(ValueError, match=r"2 file\(s\) not found.*line 3: .*b\.png; line 4: .*c\.png"):
        read_manifest(csv_path)
    (tmp_path / "absolute.csv").write_text(f"image,mask,label,defect,split\n{tmp_path / 'a.png'},,1,,test\n")
    assert read_manifest(tmp_path / "absolute.csv") == [Sample(tmp_path / "a.png", None, 1, "defect", "test")]


def _mvtec(root: Path) -> Path:
    for name in ("001.png", "000.png"):
        _png(root / "train/good" / name)
    _png(root / "test/good/000.png")
    _png(root / "test/scratch/000.PNG")
    _png(root / "test/scratch/001.jpg")
    _png(root / "test/crack/000.png")
    _png(root / "ground_truth/scratch/000_mask.png", 255)
    _png(root / "ground_truth/crack/000_mask.png", 255)
    (root / "test/crack/notes.txt").write_text("not an image")
    return root


def test_scan_mvtec(tmp_path):
    root = _mvtec(tmp_path / "bottle")
    samples = scan_mvtec(root)
    short = [(s.image.relative_to(root).as_posix(), s.mask and s.mask.name, s.label, s.defect, s.split)
             for s in samples]
    assert short == [
        ("train/good/000.png", None, 0, "good", "train"),
        ("train/good/001.png", None, 0, "good", "train"),
        ("test/good/000.png", None, 0, "good", "test"),
        ("test/crack/000.png", "000_mask.png", 1, "crack", "test"),
        ("test/scratch/000.PNG", "000_mask.png", 1, "scratch", "test"),
        ("test/scratch/001.jpg", None, 1, "scratch", "test"),
    ]


def test_scan_folder_and_load_samples_dispatch(tmp_path):
    folder = tmp_path / "plain"
    for rel in ("b/2.tif", "a.bmp", "b/1.webp"):
        _png(folder / rel, mode="RGB")
    (folder / "readme.md").write_text("x")
    samples = scan_folder(folder)
    assert [s.image.relative_to(folder).as_posix() for s in samples] == ["a.bmp", "b/1.webp", "b/2.tif"]
    assert {(s.label, s.split, s.defect, s.mask) for s in samples} == {(0, "train", "good", None)}
    assert load_samples(folder) == samples
    assert load_samples(_mvtec(tmp_path / "mv")) == scan_mvtec(tmp_path / "mv")
    assert load_samples(MANIFEST) == read_manifest(MANIFEST)


def test_load_samples_errors(tmp_path):
    with pytest.raises(ValueError, match="no such file or folder"):
        load_samples(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"empty: found no image files \(.*\.png"):
        load_samples(tmp_path / "empty")
    (tmp_path / "header.csv").write_text("image,mask,label,defect,split\n")
    with pytest.raises(ValueError, match="found no rows in the manifest"):
        load_samples(tmp_path / "header.csv")
    with pytest.raises(ValueError, match="not a .csv manifest"):
        load_samples(_png(tmp_path / "one.png"))


@pytest.mark.parametrize("text, expected", [
    ("256", (256, 256)), ("256x640", (256, 640)), (" 32 X 48 ", (32, 48)), ("7,9", (7, 9)),
    (64, (64, 64)), ((32, 48), (32, 48)), ([5], (5, 5)), (np.int64(8), (8, 8)),
])
def test_parse_image_size(text, expected):
    assert parse_image_size(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "0", "0x5", "-3", "3x", "1x2x3", "2.5", 0, -1, True, (3, 0), (1, 2, 3), 2.0])
def test_parse_image_size_rejects(text):
    with pytest.raises(ValueError, match="height x width"):
        parse_image_size(text)


def test_image_dataset_items_masks_and_cache(tmp_path):
    image = tmp_path / "img.png"
    Image.new("L", (30, 20), 100).save(image)  # H=20, W=30
    mask = np.zeros((20, 30), np.uint8)
    mask[:10] = 255  # top half defective
    Image.fromarray(mask).save(tmp_path / "mask.png")
    samples = [Sample(image, tmp_path / "mask.png", 1, "stripe", "test"), Sample(image, None, 0, "good", "test")]
    ds = ImageDataset(samples, (10, 12), channels=3)
    item = ds[0]
    assert item["image"].shape == (3, 10, 12) and item["image"].dtype == torch.float32
    torch.testing.assert_close(item["image"], torch.full((3, 10, 12), 100 / 255), atol=5e-4, rtol=0)
    assert item["mask"].shape == (1, 10, 12) and item["mask"].dtype == torch.float32
    assert item["mask"][0, :5].eq(1).all() and item["mask"][0, 5:].eq(0).all()
    assert (item["label"], item["index"]) == (1, 0)
    assert ds[1]["mask"].eq(0).all() and ds[1]["label"] == 0
    image.unlink()  # cached: later reads need no file
    torch.testing.assert_close(ds[0]["image"], item["image"], atol=0, rtol=0)
    with pytest.raises(ImageDecodeError, match=r"img\.png: file not found"):
        ImageDataset(samples, (10, 12), channels=1, cache=False)[0]


def test_image_dataset_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG not really")
    with pytest.raises(ImageDecodeError, match=r"bad\.png: not an image"):
        ImageDataset([Sample(bad, None, 0, "good", "train")], (4, 4), 1)[0]
    image, mask = _png(tmp_path / "i.png", size=(6, 8)), _png(tmp_path / "m.png", size=(8, 6))
    with pytest.raises(ValueError, match=r"m\.png is 8x6 but its image .*i\.png is 6x8"):
        ImageDataset([Sample(image, mask, 1, "x", "test")], (4, 4), 1)[0]


def test_cache_holds_images_up_to_its_budget(monkeypatch):
    import anomaly.data.datasets as datasets

    samples = [s for s in read_manifest(MANIFEST) if s.label == 0][:4]
    monkeypatch.setattr(datasets, "CACHE_BYTES", 4 * 32 * 32 * 2 - 1)  # one byte short of the 4 images
    dataset = datasets.ImageDataset(samples, (32, 32), 1)
    first = [dataset[i]["image"] for i in range(4)]
    assert sorted(dataset._cache) == [0, 1, 2] and dataset.cache_bytes == 3 * 32 * 32 * 2
    assert all(torch.equal(dataset[i]["image"], first[i]) for i in range(4))  # float16-rounded, cached or not
