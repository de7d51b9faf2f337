"""The Typer application every `anomaly` command registers on, the console used for output, and how
user mistakes are reported: one `error:` line and exit 2, never a traceback."""

import os
import socket
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
import yaml
from rich.console import Console
from rich.markup import escape

from anomaly.quiet import VERBOSE

# plain help: Typer's Rich help shows a `<bool>` type beside every flag, --help included
app = typer.Typer(help="Image anomaly detection with autoencoders.",
                  pretty_exceptions_enable=False, add_completion=False, rich_markup_mode=None)
console = Console()
err_console = Console(stderr=True, soft_wrap=True)  # never split a path across lines


def error(message: str) -> None:
    err_console.print(f"[bold red]error:[/] {escape(str(message))}")


def fail(message: str, code: int = 2) -> None:
    """Print a clear error and exit with `code` (no traceback for expected input problems)."""
    error(message)
    raise typer.Exit(code)


def warn(message: str) -> None:
    err_console.print(f"[yellow]warning:[/] {escape(str(message))}")


# bad input (including ImageDecodeError and unknown model URIs), missing or unreadable files, bad YAML
USER_ERRORS = (ValueError, OSError, yaml.YAMLError)


@contextmanager
def user_errors(prefix: str = "", extra: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """Turn the errors a user can fix into `fail(prefix + message)`; anything else is a bug and keeps its traceback."""
    try:
        yield
    except USER_ERRORS + extra as error:
        fail(f"{prefix}{error}")


def check_port(host: str, port: int) -> None:
    """Fail now, not after a server has started, when `host`:`port` cannot be listened on (in use, or not
    an address of this machine). SO_REUSEADDR as uvicorn sets it: a port left in TIME_WAIT is free."""
    try:
        family, kind, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                         flags=socket.AI_PASSIVE)[0]
        with socket.socket(family, kind) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
    except OSError as problem:
        fail(f"cannot listen on {host}:{port}: {problem.strerror or problem}; stop what uses it or pass another "
             "--port (or --host)")


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    warn(str(message))


@app.callback(invoke_without_command=True)
def options(
    ctx: typer.Context,
    verbose: Annotated[bool, typer.Option(
        "--verbose", envvar=VERBOSE, help="also show third-party tips, deprecation warnings, INFO logs and download "
                                          "bars, and warnings with their source line")] = False,
) -> None:
    """Image anomaly detection with autoencoders."""
    if ctx.invoked_subcommand is None:  # `anomaly` alone
        console.print(ctx.get_help(), markup=False, highlight=False)
        raise typer.Exit(0)
    if verbose:
        os.environ[VERBOSE] = "1"  # read by anomaly.quiet, here and in worker processes
    else:
        warnings.showwarning = _one_line_warning


def main() -> None:
    """The `anomaly` entry point: a usage mistake (bad option value, missing option, unknown command) is one
    `error:` line naming the fix, exit 2."""
    try:
        code = app(standalone_mode=False)
    except typer.Abort:  # Ctrl-C outside a command's own handler: the shell's 130, never 1 ("anomalies found")
        err_console.print("aborted")
        code = 130
    except typer.TyperException as mistake:  # click's UsageError and friends
        ctx = getattr(mistake, "ctx", None)
        error(mistake.format_message().rstrip(".") + (f"; see `{ctx.command_path} --help`" if ctx else ""))
        code = mistake.exit_code
    raise SystemExit(code or 0)
