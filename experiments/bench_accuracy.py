"""Accuracy benchmark: the default model on every dataset of the suite, against the product's targets.

    python -m experiments.bench_accuracy                                  # the whole suite (hours on 2 CPU cores)
    python -m experiments.bench_accuracy --data mtd textures              # some of it, by name
    python -m experiments.bench_accuracy --data path/to/manifest.csv -- --epochs 1 --image-size 64

Datasets: by name, mtd, bsdata, aitex and mvtec3d_tire (../shared/data/<name>/manifest.csv, read
../shared/data/README.md) and textures (experiments/make_textures.py, generated on first use); or any
manifest CSV or folder `anomaly train` accepts. For each: `anomaly train --data D --out OUT/<name> --seed S
--no-tracking --no-evaluate [--model M] [arguments after --]`, timed (minutes of wall time: loading, fit,
calibration), then `anomaly evaluate --model OUT/<name> --data D --json` on the test split: image AUROC,
pixel AUROC, AUPRO (FPR <= 0.3), F1 at the calibrated threshold, scoring speed end to end (decode to map,
images/s and megapixels/s), and the false-alarm rate on the test normals at the calibrated threshold next to
its target: the central 95% binomial interval of the false-alarm rate a threshold that meets the target
gives on that many normals (exact; a rate inside it is consistent with the target); and the best pixel AUROC and
AUPRO of maps blind to defects (experiments/blind_maps.py), which the model's must beat. Writes OUT/accuracy.md
(a table over the datasets with mean and worst rows, then one table per dataset by defect type) and
OUT/accuracy.json; with --section, the table over the datasets and a line per dataset of its image AUROC per
defect type into that section of experiments/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.stats import binom

from experiments.blind_maps import blind_metrics
from experiments.common import (SUITE, dataset_path, fmt, markdown_table, provenance, provenance_lines,
                                train_and_evaluate, write_section)

# the default model's targets on every dataset (issue 30); speed for images up to 512 px
TARGETS = {"image_auroc": 0.98, "pixel_auroc": 0.97, "aupro": 0.90, "train_minutes": 20.0, "images_per_second": 30.0}
LOWER_IS_BETTER = {"train_minutes"}


def consistent_false_alarms(n: int, target: float, level: float = 0.95) -> tuple[int, int]:
    """The false-alarm counts k in [lo, hi] out of `n` normals that a threshold with false-alarm rate `target`
    gives with probability `level`: both tails P(K <= k) and P(K >= k) of Binomial(n, target) exceed (1 - level) / 2.
    Equivalently, `target` lies inside the Clopper-Pearson interval of k / n."""
    if n < 1 or not 0 <= target <= 1:
        raise ValueError(f"need n >= 1 normals and a target rate in [0, 1]; got n={n}, target={target}")
    k = np.arange(n + 1)
    tail = (1 - level) / 2
    ok = np.flatnonzero((binom.cdf(k, n, target) > tail) & (binom.sf(k - 1, n, target) > tail))
    return int(ok[0]), int(ok[-1])


def test_megapixels(data: Path) -> tuple[float, int, int]:
    """Total megapixels, count and largest side of the test split's images (read from their headers)."""
    from anomaly.data import load_samples

    sizes = []
    for sample in load_samples(str(data)):
        if sample.split == "test":
            with Image.open(sample.image) as image:
                sizes.append(image.size)
    return sum(w * h for w, h in sizes) / 1e6, len(sizes), max(max(s) for s in sizes)


def measure(name: str, data: Path, out: Path, train_args: list[str], seed: int) -> dict:
    """Train and evaluate on one dataset; evaluate's report plus timing, speed and false-alarm figures."""
    report = train_and_evaluate(data, out / name, train_args, seed)
    megapixels, n_images, largest = test_megapixels(data)
    blind = blind_metrics(str(data)).values()  # the floor the model's pixel metrics must beat
    n_normal, rate, target = report["n_normal"], report["false_alarm_rate"], report["target_fpr"]
    false_alarms = round(rate * n_normal) if rate is not None else None
    lo, hi = consistent_false_alarms(n_normal, target) if target is not None and n_normal else (None, None)
    return {**report, "dataset": name, "data": str(data), "n_test": n_images, "largest_side": largest,
            "megapixels_per_second": megapixels / report["seconds"], "false_alarms": false_alarms,
            "false_alarms_consistent": [lo, hi], "blind_pixel_auroc": max(auroc for auroc, _ in blind),
            "blind_aupro": max(pro for _, pro in blind),
            "false_alarm_inside": None if lo is None or false_alarms is None else lo <= false_alarms <= hi}


def misses(row: dict) -> list[str]:
    """The targets a row misses (a metric that is undefined misses)."""
    def missed(key: str, goal: float) -> bool:
        value = row.get(key)
        return value is None or (value > goal if key in LOWER_IS_BETTER else value < goal)

    out = [key for key, goal in TARGETS.items() if missed(key, goal)]
    return out + ([] if row.get("false_alarm_inside") else ["false_alarm_rate"])


def summary(rows: list[dict], combine) -> dict:
    """One row combining `rows` column by column: `combine(values, key)` over the defined values."""
    keys = [*TARGETS, "pixel_auroc", "f1", "megapixels_per_second", "false_alarm_rate"]
    combined = {}
    for key in dict.fromkeys(keys):
        values = [r[key] for r in rows if r.get(key) is not None]
        combined[key] = combine(values, key) if values else None
    combined["inside"] = sum(bool(r["false_alarm_inside"]) for r in rows)
    return combined


def mean(values: list[float], key: str) -> float:
    return statistics.fmean(values)


def worst(values: list[float], key: str) -> float:
    return max(values) if key in LOWER_IS_BETTER or key == "false_alarm_rate" else min(values)


HEADER = ["dataset", "train min", "image AUROC", "pixel AUROC", "AUPRO@0.3", "F1@thr", "img/s", "MP/s",
          "false alarms", "target FPR: 95% range", "inside", "targets missed", "blind maps: pixel AUROC / AUPRO"]


def dataset_cells(r: dict) -> list[str]:
    lo, hi = r["false_alarms_consistent"]
    target = "n/a" if lo is None else f"{r['target_fpr']:.3f}: {lo}-{hi} of {r['n_normal']}"
    rate = "n/a" if r["false_alarms"] is None else f"{r['false_alarms']}/{r['n_normal']} ({r['false_alarm_rate']:.3f})"
    return [r["dataset"], fmt(r["train_minutes"], 1), fmt(r["image_auroc"]), fmt(r["pixel_auroc"]), fmt(r["aupro"]),
            fmt(r["f1"]), fmt(r["images_per_second"], 1), fmt(r["megapixels_per_second"], 2), rate, target,
            {True: "yes", False: "no", None: "n/a"}[r["false_alarm_inside"]], ", ".join(misses(r)) or "none",
            f"{fmt(r['blind_pixel_auroc'])} / {fmt(r['blind_aupro'])}"]


def summary_cells(label: str, s: dict, n: int) -> list[str]:
    return [label, fmt(s["train_minutes"], 1), fmt(s["image_auroc"]), fmt(s["pixel_auroc"]), fmt(s["aupro"]),
            fmt(s["f1"]), fmt(s["images_per_second"], 1), fmt(s["megapixels_per_second"], 2),
            f"rate {fmt(s['false_alarm_rate'])}", "", f"{s['inside']}/{n}", "", ""]


def summary_table(rows: list[dict], mean_row: dict, worst_row: dict) -> str:
    table = [dataset_cells(r) for r in rows]
    table += [summary_cells("**mean**", mean_row, len(rows)), summary_cells("**worst**", worst_row, len(rows))]
    return markdown_table(HEADER, table)


def markdown(rows: list[dict], mean_row: dict, worst_row: dict) -> str:
    """accuracy.md: the targets, the table over the datasets, then one table per dataset by defect type."""
    goals = ", ".join(f"{k} {'<=' if k in LOWER_IS_BETTER else '>='} {v:g}" for k, v in TARGETS.items())
    parts = [f"Targets: {goals}; false alarms on the test normals inside the 95% range of the target. Scoring end "
             "to end (decode to map) on the test split, batch 16; train min = wall time of `anomaly train`. Blind "
             "maps: the best pixel AUROC and AUPRO of maps that know nothing of defects (experiments/blind_maps.py), "
             "the floor the model's must beat to say anything about defects.", "",
             summary_table(rows, mean_row, worst_row)]
    for r in rows:
        per_defect = [[defect, str(m["n"]), fmt(m["image_auroc"]), fmt(m["pixel_auroc"]), fmt(m["aupro"])]
                      for defect, m in r["per_defect"].items()]
        parts += ["", f"{r['dataset']} ({r['data']}; {r['n_test']} test images, largest side {r['largest_side']} px; "
                  f"{r['n_normal']} normal, {r['n_anomalous']} anomalous)", "",
                  markdown_table(["defect", "images (with the normals)", "image AUROC", "pixel AUROC", "AUPRO@0.3"],
                                 per_defect)]
    return "\n".join(parts)


def training_line(r: dict) -> str:
    """`- name: epochs N; painted drawn img / px, thin img / px` (image / pixel AUROC on the held-out normals)."""
    painted = [f"{recipe} {fmt(r['held_out'][f'{recipe}_image_auroc'])} / {fmt(r['held_out'][f'{recipe}_pixel_auroc'])}"
               for recipe in ("drawn", "thin") if f"{recipe}_image_auroc" in r["held_out"]]
    return f"- {r['dataset']}: epochs {r['epochs'] or 'n/a'}" + (f"; painted {', '.join(painted)}" if painted else "")


def section_markdown(rows: list[dict], mean_row: dict, worst_row: dict) -> str:
    """RESULTS.md's shorter form: the table over the datasets, then a line per dataset of image AUROC per defect,
    then one of the epochs trained and the painted validation (image / pixel AUROC)."""
    lines = [f"- {r['dataset']}, image AUROC per defect: "
             + ", ".join(f"{d} {fmt(m['image_auroc'])}" for d, m in r["per_defect"].items()) for r in rows]
    lines += [training_line(r) for r in rows]
    return summary_table(rows, mean_row, worst_row) + "\n\n" + "\n".join(lines)


def dataset_name(spec: str) -> str:
    path = Path(spec)
    return spec if spec in SUITE else (path.parent.name if path.suffix == ".csv" else path.name)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     usage="python -m experiments.bench_accuracy [options] [-- anomaly train options]")
    parser.add_argument("--data", nargs="+", default=list(SUITE), metavar="NAME|PATH",
                        help=f"datasets: {', '.join(SUITE)} or manifest/folder paths (default: all of the suite)")
    parser.add_argument("--model", default="", help="anomaly train --model (default: the CLI's default model)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/bench-accuracy", help="bundles, accuracy.md and accuracy.json")
    parser.add_argument("--section", default="", help="also write the markdown into this RESULTS.md section")
    args, train_args = parser.parse_known_args(argv)
    train_args = [a for a in train_args if a != "--"] + (["--model", args.model] if args.model else [])
    names = [dataset_name(spec) for spec in args.data]
    if len(set(names)) != len(names):
        parser.error(f"two datasets share a name ({', '.join(names)}); their bundles would overwrite each other")
    paths = [dataset_path(spec) for spec in args.data]  # every dataset found before hours of training
    info = provenance(argv)
    print(provenance_lines(info), flush=True)
    out = Path(args.out)
    rows = []
    for name, data in zip(names, paths):
        rows.append(measure(name, data, out, train_args, args.seed))
        print("| " + " | ".join(dataset_cells(rows[-1])) + " |", flush=True)
    mean_row, worst_row = summary(rows, mean), summary(rows, worst)
    text = markdown(rows, mean_row, worst_row)
    result = {"provenance": info, "targets": TARGETS, "train_args": train_args, "seed": args.seed,
              "datasets": {r["dataset"]: {**r, "misses": misses(r)} for r in rows}, "mean": mean_row,
              "worst": worst_row}
    out.mkdir(parents=True, exist_ok=True)
    (out / "accuracy.md").write_text(provenance_lines(info) + "\n" + text + "\n")
    (out / "accuracy.json").write_text(json.dumps(result, indent=1))
    print(text)
    if args.section:
        write_section(args.section, section_markdown(rows, mean_row, worst_row), info)
    return result


if __name__ == "__main__":
    main()
