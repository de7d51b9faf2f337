"""`anomaly export`: the scoring graph as ONNX, with the bundle's config and calibration beside it."""

import json
from typing import Annotated

import typer

from anomaly.cli.app import app, console, fail, user_errors


@app.command()
def export(
    model: Annotated[str, typer.Option(help="bundle folder, runs:/<id>/model or models:/<name>@<alias>")],
    out: Annotated[str, typer.Option(help="folder to write model.onnx, config.json, calibration.json into")],
    format: Annotated[str, typer.Option("--format", help="export format (onnx)")] = "onnx",
) -> None:
    """Export model + anomaly map + smoothing + image score to ONNX (dynamic batch), checked against torch.

    The folder loads with `Detector.load(OUT, backend="onnxruntime")` or `--backend onnxruntime`.
    From an MLflow URI, the folder is also logged as the `onnx/` artifacts of the run of the version
    exported (an alias is resolved once, when the model loads)."""
    if format != "onnx":
        fail(f"unknown --format {format!r}; expected onnx")
    from anomaly.detector import Detector
    from anomaly.export import EXPORT_INFO, export_onnx

    with user_errors(extra=(RuntimeError,)):  # RuntimeError: the export failed its parity check
        detector = Detector.load(model, device="cpu")
        folder = export_onnx(detector, out)

    parity = json.loads((folder / EXPORT_INFO).read_text())["parity_max_abs_difference"]
    console.print(f"exported {model} to {folder} (max abs difference to torch: map {parity['map']:.1e}, "
                  f"score {parity['score']:.1e})")
    if pinned := detector.info["pinned"]:  # from MLflow: log to the version exported, even if its alias moved since
        from anomaly.tracking import log_export

        console.print(f"logged to MLflow as {log_export(pinned, folder)}")
