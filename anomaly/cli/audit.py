"""`anomaly audit`: score files, folders and globs into results.csv/.jsonl, overlays and report.html.

Exit codes: 0 done; 1 with --fail-on-anomaly when any image is anomalous; 2 when any file failed
(or the audit could not start); 3 when the audit stopped before it finished (an output that cannot be
written, or a bug: never 1, Python's code for an uncaught exception); 130 when interrupted. After 3
or 130, rerun with --resume.
"""

from __future__ import annotations

import datetime
import traceback
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from anomaly.cli.app import app, console, err_console, fail, user_errors, warn

Opt = typer.Option
STOPPED = 3


def _warn(message: object) -> None:
    from anomaly.audit.inputs import readable

    warn(readable(str(message)))


@contextmanager
def _audit_errors(out: Path) -> Iterator[None]:
    """Resume warnings on stderr as one line each; Ctrl-C exits 130; an audit that stops unfinished exits 3
    with what stopped it (and the traceback when it is a bug), never with Python's 1 (the anomalies code)."""
    from anomaly.audit.inputs import readable
    from anomaly.audit.results import ResumeWarning

    show = warnings.showwarning
    with warnings.catch_warnings():
        warnings.simplefilter("always", ResumeWarning)
        warnings.showwarning = lambda message, category, *args, **kwargs: (
            _warn(message) if issubclass(category, ResumeWarning) else show(message, category, *args, **kwargs))
        try:
            yield
        except (typer.Exit, typer.Abort):
            raise
        except KeyboardInterrupt:
            kept = escape(readable(f"rows written so far are kept in {out}"))
            err_console.print(f"[yellow]interrupted:[/] {kept}; rerun the same command with --resume to finish")
            raise typer.Exit(130) from None
        except Exception as error:  # noqa: BLE001 - reported, then exit 3
            if not isinstance(error, OSError):
                traceback.print_exc()
            fail(readable(f"the audit stopped: {type(error).__name__}: {error}. Rows written so far are kept in "
                          f"{out}; fix the cause and rerun the same command with --resume"), STOPPED)


def _progress(disable: bool):
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task) -> Text:
            speed = task.finished_speed or task.speed
            return Text("? images/s" if speed is None else f"{speed:.1f} images/s", style="progress.data.speed")

    return Progress(TextColumn("[bold]auditing"), BarColumn(), MofNCompleteColumn(), RateColumn(),
                    TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console,
                    disable=disable, speed_estimate_period=10)


def _summary_table(summary):
    from rich.table import Table

    table = Table(title="Audit summary", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("images", str(summary.images))
    table.add_row("anomalous", f"[red]{summary.anomalous}[/]" if summary.anomalous else "0")
    table.add_row("errors", f"[yellow]{summary.errors}[/]" if summary.errors else "0")
    table.add_row("audited now", f"{summary.new} in {summary.seconds:.1f} s ({summary.images_per_second:.1f} images/s)")
    stages = ", ".join(f"{k} {v:.1f} s" for k, v in summary.stages.items())
    table.add_row("slowest stage", f"{summary.slowest_stage} ({stages})" if summary.stages else "n/a")
    return table


@app.command()
def audit(
    inputs: Annotated[list[str], typer.Argument(help="image files, folders (recursive) and glob patterns")],
    model: Annotated[str, Opt(help="bundle folder, runs:/<id>/model or models:/<name>@<alias>")],
    out: Annotated[Optional[Path], Opt(help="output folder (default: audits/<date-time>)")] = None,
    overlays: Annotated[str, Opt(help="heatmap overlays to write: anomalous | all | none")] = "anomalous",
    maps: Annotated[bool, Opt("--maps", help="also write raw anomaly maps (maps/*.npy, float32 H x W)")] = False,
    threshold: Annotated[Optional[float], Opt(help="image threshold (default: the calibrated one)")] = None,
    batch_size: Annotated[int, Opt(help="images per inference batch")] = 16,
    workers: Annotated[int, Opt(help="decoding threads (local) or scoring actors (ray)")] = 2,
    resume: Annotated[bool, Opt("--resume", help="continue an interrupted audit in --out, skipping done images")] = False,
    overwrite: Annotated[bool, Opt("--overwrite", help="discard results already in --out")] = False,
    fail_on_anomaly: Annotated[bool, Opt("--fail-on-anomaly", help="exit 1 when any image is anomalous")] = False,
    engine: Annotated[str, Opt(help="local | ray")] = "local",
    backend: Annotated[str, Opt(help="inference backend: torch | onnxruntime")] = "torch",
    ray_address: Annotated[Optional[str], Opt(help="Ray cluster address (default: RAY_ADDRESS or a local instance)")] = None,
    mlflow: Annotated[bool, Opt("--mlflow", help="log the audit as an MLflow run")] = False,
    experiment: Annotated[str, Opt(help="MLflow experiment for --mlflow")] = "anomaly-audit",
    progress: Annotated[bool, Opt(help="show the progress bar")] = True,
) -> None:
    """Audit images: results table (CSV + JSONL), heatmap overlays and a self-contained report.html."""
    from anomaly.audit import AuditOptions
    from anomaly.audit.inputs import readable

    out = out or Path("audits") / datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    try:
        options = AuditOptions(out=out, batch_size=batch_size, workers=workers, overlays=overlays, maps=maps,
                               threshold=threshold, resume=resume, overwrite=overwrite, engine=engine,
                               ray_address=ray_address)
    except ValueError as error:
        fail(str(error))
    with _audit_errors(out):
        summary, detector = _run(inputs, model, backend, options, progress)
        console.print(_summary_table(summary))
        for name, path in summary.files.items():
            console.print(escape(readable(f"  {name:<14} {path}")))
        if mlflow:
            from anomaly.audit.mlflow_run import log_audit

            params = {"inputs": readable(" ".join(inputs))[:500], "out": readable(str(out)), "engine": engine,
                      "batch_size": batch_size, "overlays": overlays,
                      "threshold": detector.calibration.image_threshold if threshold is None else threshold}
            run_id = log_audit(summary, detector.info, params, experiment=experiment, run_name=readable(out.name))
            console.print(f"  mlflow run     {run_id} (experiment {escape(experiment)})")
    if summary.errors:
        raise typer.Exit(2)
    if fail_on_anomaly and summary.anomalous:
        raise typer.Exit(1)


def _run(inputs: list[str], model: str, backend: str, options, progress: bool):
    """Expand the inputs, load the model and audit with a progress bar -> (AuditSummary, Detector)."""
    from anomaly.audit import ResumeError, expand_inputs, run_audit
    from anomaly.audit.inputs import readable
    from anomaly.detector import Detector

    paths, notes = expand_inputs(inputs)
    for note in notes:
        _warn(note)
    if not paths:
        fail("no images to audit; give image files, folders or glob patterns (quote globs: \"/data/**/*.png\")")
    with user_errors(readable(f"cannot load model {model}: ")):
        detector = Detector.load(model, backend=backend)
    bar = _progress(disable=not progress)
    task = bar.add_task("audit", total=None)

    def on_start(todo: int, done: int) -> None:
        bar.update(task, total=todo)
        if done:
            console.print(f"resuming: {done} images already audited, {todo} to go")

    try:
        with bar:
            summary = run_audit(detector, paths, options, progress=lambda n: bar.advance(task, n), on_start=on_start)
    except ResumeError as error:
        fail(str(error))
    return summary, detector
