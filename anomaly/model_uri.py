"""The grammar of MLflow model URIs, without MLflow: whether a model argument is a registry URI, and
its parts. `anomaly.tracking` resolves parsed URIs in the registry (and re-exports these names);
`Detector.load` and the service decide "registry or local folder" here without importing mlflow.

    runs:/<run_id>/<path>        ModelURI("run", run_id, path)
    models:/<name>@<alias>       ModelURI("alias", name, alias)     the version moves with the alias
    models:/<name>/<version>     ModelURI("version", name, version) a fixed version, or "latest"
"""

from __future__ import annotations

import re
from typing import NamedTuple

EXPECTED = "expected models:/<name>@<alias>, models:/<name>/<version> or runs:/<run_id>/model"


class RegistryError(ValueError):
    """A model URI that cannot be read, or naming no run, model, version or alias; the message lists
    what exists."""


class ModelURI(NamedTuple):
    """A parsed registry URI: kind "run" (name = run id, ref = artifact path), "alias" or "version"."""

    kind: str
    name: str
    ref: str


def parse_model_uri(uri: str) -> ModelURI | None:
    """The parts of a `runs:/` or `models:/` URI; None for anything else (a local folder).
    Raises RegistryError for a malformed runs:/ or models:/ URI."""
    if not uri.startswith(("runs:/", "models:/")):
        return None
    if found := re.fullmatch(r"runs:/([^/]+)/(.+)", uri):
        return ModelURI("run", found[1], found[2])
    if found := re.fullmatch(r"models:/([^/@]+)(?:@([^/]+)|/([^/]+))", uri):
        return ModelURI("alias" if found[2] else "version", found[1], found[2] or found[3])
    raise RegistryError(f"cannot read model URI {uri!r}; {EXPECTED}")
