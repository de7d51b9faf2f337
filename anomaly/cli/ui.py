"""`anomaly ui`: the MLflow UI on the store that `anomaly train` and `anomaly calibrate` log to."""

from typing import Annotated

import typer

from anomaly.cli.app import app, console, fail


@app.command()
def ui(
    host: Annotated[str, typer.Option(help="address to listen on (0.0.0.0 to share it on the network)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 5000,
) -> None:
    """Open the MLflow UI on the store `anomaly train` logs to (./mlflow.db and ./mlruns by default).

    When MLFLOW_TRACKING_URI names a tracking server, open that address instead: it serves the UI."""
    from anomaly import tracking

    uri = tracking.tracking_uri()
    console.print(f"MLflow UI for {uri} at [bold]http://{host}:{port}[/] (Ctrl+C stops it)")
    try:
        tracking.serve_ui(host, port)
    except ValueError as error:
        fail(str(error))
