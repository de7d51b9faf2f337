"""The grammar of MLflow model URIs, without MLflow: whether a model argument is a registry URI, and
its parts. `anomaly.tracking` resolves parsed URIs in the registry (and re-exports these names);
`Detector.load` and the service decide "registry or local folder" here without importing mlflow.

    runs:/<run_id>/<path>        ModelURI("run", run_id, path)
    models:/<name>@<alias>       ModelURI("alias", name, alias)     the version moves with the alias
    models:/<name>/<version>     ModelURI("version", name, version) a fixed version, or "latest"

`bundle_folder` reads where a downloaded model's bundle lies, and keeps it inside the model's folder.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, NamedTuple

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


def bundle_folder(model_dir: Path, mlmodel: Any, uri: str) -> Path:
    """The bundle folder of a downloaded model: `model_dir` (the model's own artifact folder) joined
    with the path its MLmodel names (flavors.python_function.artifacts.bundle.path, as parsed from YAML),
    symbolic links resolved. Raises RegistryError when there is no such path, or when it is absolute
    or leads outside `model_dir` (`..`, a link): an edited MLmodel must not point the loader elsewhere."""
    path = mlmodel
    for key in ("flavors", "python_function", "artifacts", "bundle", "path"):
        path = path.get(key) if isinstance(path, dict) else None
    if not path:
        raise RegistryError(f"{uri} is not an anomaly model: its MLmodel has no 'bundle' artifact")
    if not isinstance(path, str) or Path(path).is_absolute():
        raise RegistryError(f"{uri}: its MLmodel's bundle path must be relative to the model's own folder, "
                            f"got {path!r}")
    root = model_dir.resolve()
    folder = (root / path).resolve()
    if not folder.is_relative_to(root):
        raise RegistryError(f"{uri}: its MLmodel's bundle path {path!r} leads to {folder}, outside the model's "
                            f"own folder")
    return folder
