"""Third-party tips, deprecation warnings, INFO logs and download bars, kept out of our output unless
asked for with `anomaly --verbose` (or `ANOMALY_VERBOSE=1`). Each caller silences what its own
third-party calls print, for those calls only: `with quiet(warnings=..., loggers=...): trainer.fit(...)`.
"""

from __future__ import annotations

import logging
import os
import re
import warnings as _warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

VERBOSE = "ANOMALY_VERBOSE"  # set by `anomaly --verbose`; inherited by worker processes


def verbose() -> bool:
    """Whether third-party output was asked for (ANOMALY_VERBOSE set to anything but "", 0, false, no)."""
    return os.environ.get(VERBOSE, "").strip().lower() not in ("", "0", "false", "no")


@contextmanager
def quiet(*, warnings: Sequence[str] = (), loggers: Sequence[str] = (),
          env: Mapping[str, str] | None = None) -> Iterator[None]:
    """For the block, unless `verbose()`: ignore warnings whose message starts with a regex of `warnings`,
    show only WARNING and above of `loggers`, and set the environment variables `env` (a library's own
    switches, e.g. MLflow's progress bars). Everything is restored on exit."""
    if verbose():
        yield
        return
    levels = {name: logging.getLogger(name).level for name in loggers}
    saved = {name: os.environ.get(name) for name in env or {}}
    patterns = [re.compile(pattern, re.I) for pattern in warnings]
    with _warnings.catch_warnings():
        for pattern in warnings:
            _warnings.filterwarnings("ignore", message=pattern)
        show = _warnings.showwarning  # also for warnings raised under a library's own filters (MLflow's "once")

        def show_unless_silenced(message, *args, **kwargs):
            if not any(p.match(str(message)) for p in patterns):
                show(message, *args, **kwargs)
        _warnings.showwarning = show_unless_silenced
        for name in loggers:
            logging.getLogger(name).setLevel(max(levels[name], logging.WARNING))
        os.environ.update(env or {})
        try:
            yield
        finally:
            for name, level in levels.items():
                logging.getLogger(name).setLevel(level)
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
