"""`anomaly` command line: each command lives in its own module of this package and registers on `app`."""

import importlib
import pkgutil

from anomaly.cli.app import app

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")


def main() -> None:
    app()
