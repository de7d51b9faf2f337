"""The Typer application every `anomaly` command registers on, and the console used for output."""

import typer
from rich.console import Console

app = typer.Typer(help="Image anomaly detection with autoencoders.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
console = Console()
err_console = Console(stderr=True, soft_wrap=True)  # never split a path across lines


def fail(message: str, code: int = 2) -> None:
    """Print a clear error and exit with `code` (no traceback for expected input problems)."""
    err_console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)
