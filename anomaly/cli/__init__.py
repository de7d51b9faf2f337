"""`anomaly` command line: each command lives in its own module of this package and registers on `app`;
`main` is the entry point."""

import importlib
import pkgutil

from anomaly.cli.app import app, main  # noqa: F401 - the entry point and the app, for tests

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
