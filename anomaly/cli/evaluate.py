"""`anomaly evaluate`: metrics of a trained model on labelled data."""

import json
from typing import Annotated

import typer

from anomaly.cli.app import app, console, fail, user_errors


def run_evaluation(model_uri: str, data: str, split: str, batch_size: int, progress: bool = True,
                   backend: str = "torch", painted: bool | None = False):
    """Load the model, score `split` of `data`, return the report (shared by train and evaluate). `painted`:
    paint defects into the normal images too (None: when the split has no anomalous image)."""
    from rich.progress import Progress

    from anomaly.data import load_samples
    from anomaly.detector import Detector
    from anomaly.evaluation import evaluate
    from anomaly.painted import DRAWS, RECIPES

    detector = Detector.load(model_uri, backend=backend)
    everything = load_samples(data)
    samples = [s for s in everything if s.split == split]
    if not samples:
        splits = sorted({s.split for s in everything})
        fail(f"{data} has no images in split {split!r} (its splits: {', '.join(splits)}; a plain folder's images are "
             f"all 'train'); use --split {splits[0]}")
    painted = not any(s.label for s in samples) if painted is None else painted
    with Progress(console=console, disable=not progress, transient=True) as bar:
        scoring = bar.add_task("scoring", total=len(samples))
        drawing = bar.add_task("painted defects", total=len(RECIPES) * DRAWS, visible=painted)
        report, _ = evaluate(detector, samples, batch_size=batch_size, on_batch=lambda n: bar.advance(scoring, n),
                             painted=painted, on_draw=lambda: bar.advance(drawing))
    return report


@app.command()
def evaluate(
    model: Annotated[str, typer.Option(help="bundle folder, runs:/<id>/model or models:/<name>@<alias>")],
    data: Annotated[str, typer.Option(help="manifest CSV or MVTec-style folder with labelled images (default: the "
                                           "bundled MTD sample)", show_default=False)] = "",
    split: Annotated[str, typer.Option(help="which split to score")] = "test",
    batch_size: Annotated[int, typer.Option(min=1, help="images per inference batch")] = 16,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object instead of a table")] = False,
    backend: Annotated[str, typer.Option(help="torch, or onnxruntime (a bundle is exported at load; an "
                                               "`anomaly export` folder is run as is)")] = "torch",
    painted: Annotated[bool | None, typer.Option(
        "--painted/--no-painted", help="also paint scratches, stains, holes and hairline cracks into the normal "
                                       "images and report how well the model finds them (default: only when "
                                       "the split has no anomalous image)", show_default=False)] = None,
) -> None:
    """Image AUROC, pixel AUROC, AUPRO (FPR <= 0.3) and F1 at the calibrated threshold, per defect type; the
    false alarms on the normal images. On normal images alone (e.g. new ones, to check for drift): the false
    alarms, and painted defects found in them."""
    from anomaly.cli.report import report_table
    from anomaly.training import SAMPLE_MANIFEST

    with user_errors():
        report = run_evaluation(model, data or str(SAMPLE_MANIFEST), split, batch_size, progress=not as_json,
                                backend=backend, painted=painted)
    if as_json:
        print(json.dumps(report.to_dict()))
    else:
        console.print(report_table(report, title=f"{model} on {data or 'the bundled sample'} ({split})"))
        console.print(guarantee_lines(report), highlight=False)


def guarantee_lines(report) -> str:
    """The threshold's guarantee in words, and whether the false alarms seen agree with it."""
    lines = [f"The threshold's guarantee: {report.guarantee}."]
    if report.false_alarm_interval is not None and report.fpr_bound is not None:
        low, high = report.false_alarm_interval
        seen = (f"False alarms {report.false_alarm_rate:.1%} of {report.n_normal} (95% interval {low:.1%} to "
                f"{high:.1%})")
        if low <= report.fpr_bound <= high:
            lines.append(f"{seen}: consistent with it.")
        elif report.fpr_bound > high:
            lines.append(f"{seen}: fewer than guaranteed; these normals score lower than the held-out ones.")
        else:
            lines.append(f"{seen}: more than guaranteed; these normals do not score like the held-out ones "
                         f"(new images, camera or lighting?): re-calibrate on them (`anomaly calibrate`).")
    return "\n".join(lines)
