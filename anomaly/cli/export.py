"""`anomaly export`: the scoring graph as ONNX, with the bundle's config and calibration beside it."""

import json
from typing import Annotated

import typer

from anomaly.cli.app import app, console, fail


@app.command()
def export(
    model: Annotated[str, typer.Option(help="bundle folder, runs:/<id>/model or models:/<name>@<alias>")],
    out: Annotated[str, typer.Option(help="folder to write model.onnx, config.json, calibration.json into")],
    format: Annotated[str, typer.Option("--format", help="export format (onnx)")] = "onnx",
) -> None:
    """Export model + anomaly map + smoothing + image score to ONNX (dynamic batch), checked against torch.

    The folder loads with `Detector.load(OUT, backend="onnxruntime")` or `--backend onnxruntime`.
    From an MLflow URI, the folder is also logged as the `onnx/` artifacts of the model version's run."""
    if format != "onnx":
        fail(f"unknown --format {format!r}; expected onnx")
    from anomaly.detector import Detector
    from anomaly.export import EXPORT_INFO, export_onnx

    try:
        folder = export_onnx(Detector.load(model, device="cpu"), out)
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        fail(str(error))

    parity = json.loads((folder / EXPORT_INFO).read_text())["parity_max_abs_difference"]
    console.print(f"exported {model} to {folder} (max abs difference to torch: map {parity['map']:.1e}, "
                  f"score {parity['score']:.1e})")
    if model.startswith(("runs:/", "models:/")):
        from anomaly.tracking import log_export

        console.print(f"logged to MLflow as {log_export(model, folder)}")
