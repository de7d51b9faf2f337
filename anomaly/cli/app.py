"""The Typer application every `anomaly` command registers on, and the console used for output."""

from collections.abc import Iterator
from contextlib import contextmanager

import typer
import yaml
from rich.console import Console

app = typer.Typer(help="Image anomaly detection with autoencoders.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
console = Console()
err_console = Console(stderr=True, soft_wrap=True)  # never split a path across lines


def fail(message: str, code: int = 2) -> None:
    """Print a clear error and exit with `code` (no traceback for expected input problems)."""
    err_console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


# bad input (including ImageDecodeError and unknown model URIs), missing or unreadable files, bad YAML
USER_ERRORS = (ValueError, OSError, yaml.YAMLError)


@contextmanager
def user_errors(prefix: str = "", extra: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """Turn the errors a user can fix into `fail(prefix + message)`; anything else is a bug and keeps its traceback."""
    try:
        yield
    except USER_ERRORS + extra as error:
        fail(f"{prefix}{error}")
