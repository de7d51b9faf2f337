"""`anomaly evaluate`: metrics of a trained model on labelled data."""

import json
from typing import Annotated

import typer

from anomaly.cli.app import app, console, fail, user_errors


def run_evaluation(model_uri: str, data: str, split: str, batch_size: int, progress: bool = True,
                   backend: str = "torch"):
    """Load the model, score `split` of `data`, return the report (shared by train and evaluate)."""
    from rich.progress import Progress

    from anomaly.data import load_samples
    from anomaly.detector import Detector
    from anomaly.evaluation import evaluate

    detector = Detector.load(model_uri, backend=backend)
    samples = [s for s in load_samples(data) if s.split == split]
    if not samples:
        fail(f"{data} has no images in split {split!r}; use --split to choose another")
    with Progress(console=console, disable=not progress, transient=True) as bar:
        task = bar.add_task("scoring", total=len(samples))
        report, _ = evaluate(detector, samples, batch_size=batch_size,
                             on_batch=lambda n: bar.advance(task, n))
    return report


@app.command()
def evaluate(
    model: Annotated[str, typer.Option(help="bundle folder, runs:/<id>/model or models:/<name>@<alias>")],
    data: Annotated[str, typer.Option(help="manifest CSV or MVTec-style folder with labelled images")] = "",
    split: Annotated[str, typer.Option(help="which split to score")] = "test",
    batch_size: Annotated[int, typer.Option(help="images per inference batch")] = 16,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object instead of a table")] = False,
    backend: Annotated[str, typer.Option(help="torch, or onnxruntime (a bundle is exported at load; an "
                                               "`anomaly export` folder is run as is)")] = "torch",
) -> None:
    """Image AUROC, pixel AUROC, AUPRO (FPR <= 0.3) and F1 at the calibrated threshold, per defect type."""
    from anomaly.cli.report import report_table
    from anomaly.training import SAMPLE_MANIFEST

    with user_errors():
        report = run_evaluation(model, data or str(SAMPLE_MANIFEST), split, batch_size, progress=not as_json,
                                backend=backend)
    if as_json:
        print(json.dumps(report.to_dict()))
    else:
        console.print(report_table(report, title=f"{model} on {data or 'the bundled sample'} ({split})"))
