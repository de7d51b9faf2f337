"""`anomaly ui`: the MLflow UI on the store that `anomaly train` and `anomaly calibrate` log to."""

from typing import Annotated

import typer

from anomaly.cli.app import app, check_port, console, user_errors


@app.command()
def ui(
    host: Annotated[str, typer.Option(help="address to listen on (0.0.0.0 to share it on the network)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="port to listen on")] = 5000,
) -> None:
    """Open the MLflow UI on the store `anomaly train` logs to (./mlflow.db and ./mlruns by default), at the
    runs of the latest run's experiment.

    When MLFLOW_TRACKING_URI names a tracking server, open that address instead: it serves the UI."""
    from anomaly import tracking

    with user_errors():
        uri = tracking.local_store()
    check_port(host, port)
    with user_errors(f"cannot read the MLflow store {uri}: ", extra=(tracking.MlflowException,)):
        landing = tracking.ui_landing(f"http://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}")
    console.print(f"MLflow UI for {uri}: open [bold]{landing}[/] (Ctrl+C stops it)", soft_wrap=True)
    tracking.serve_ui(host, port)
