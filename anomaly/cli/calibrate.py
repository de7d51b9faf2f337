"""`anomaly calibrate`: new thresholds from new normal images, same weights, a new model version."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from anomaly.cli.app import app, console, fail, user_errors
from anomaly.recalibration import recalibrate as recalibrate  # the workflow this command runs

Opt = typer.Option


@app.command("calibrate")
def calibrate_command(
    model: Annotated[str, Opt(help="bundle folder, runs:/<id>/model, models:/<name>@<alias> or models:/<name>/<v>")],
    data: Annotated[str, Opt(help="normal images: a folder, a manifest CSV or an MVTec folder (label-0 images)")],
    fpr: Annotated[Optional[float], Opt(help="target false-alarm rate (default: the model's own)")] = None,
    pixel_fpr: Annotated[Optional[float], Opt(help="target pixel false-positive rate (default: the model's)")] = None,
    out: Annotated[Optional[str], Opt(help="also write the re-calibrated bundle to this folder (default: none, "
                                            "only MLflow has it)")] = None,
    tracking: Annotated[bool, Opt("--tracking/--no-tracking", help="log a run and register a new "
                                                                   "version")] = True,
    experiment: Annotated[Optional[str], Opt(help="MLflow experiment (default: the source model's)")] = None,
    register_as: Annotated[Optional[str], Opt(help="registered model name (default: the source model's)")] = None,
    promote: Annotated[bool, Opt("--promote", help="move the 'champion' alias to the new version")] = False,
    backend: Annotated[str, Opt(help="torch, or onnxruntime (an `anomaly export` folder is re-calibrated as is; "
                                     "with --no-tracking)")] = "torch",
) -> None:
    """Re-calibrate thresholds on new normal images without retraining; registers a new model version."""
    if not tracking and not out:
        fail("with --no-tracking, give --out: otherwise the new calibration would be written nowhere")
    with user_errors():
        old, new, bundle, registration = recalibrate(model, data, fpr=fpr, pixel_fpr=pixel_fpr, out=out,
                                                     tracking=tracking, experiment=experiment,
                                                     register_as=register_as, promote=promote, backend=backend)
    console.print(f"[bold green]re-calibrated[/] on {new.n_images} normal images: image threshold "
                  f"{old.image_threshold:.5g} -> [bold]{new.image_threshold:.5g}[/] ({new.method}, target FPR "
                  f"{new.target_fpr}); pixel threshold {old.pixel_threshold:.5g} -> {new.pixel_threshold:.5g}")
    console.print(f"guarantee: {new.guarantee()}", highlight=False)
    if registration is not None:
        r = registration
        console.print(f"MLflow run [bold]{r.run_id}[/] in experiment {r.experiment!r} · model "
                      f"[bold]models:/{r.name}/{r.version}[/] · champion: {'yes' if r.promoted else 'no'} ({r.reason})")
    if out:
        console.print(f"model bundle: [bold]{Path(bundle)}[/]")
