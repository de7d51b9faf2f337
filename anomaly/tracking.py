"""MLflow: where runs go, what a run carries, the model registry. The only module that imports mlflow.

Where: `MLFLOW_TRACKING_URI` when set (a shared `mlflow server`), else MLflow 3's own default, made
explicit: the SQLite store `sqlite:///<cwd>/mlflow.db` with artifacts in `<cwd>/mlruns`. Nothing
here runs at import; every entry point resolves the store again (so tests can point it elsewhere).

Models: a bundle folder is logged as a pyfunc "model from code" (`anomaly/mlflow_model.py`, no
pickled objects) with the bundle as its artifact, registered under a name, and promoted by moving
the `champion` alias (rule in `promote`). `download_bundle` brings a bundle back for the Detector.
The URI grammar (`anomaly.model_uri`) and run provenance (`anomaly.provenance`) need no mlflow and
live apart; their names are importable from here as well.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import os
import re
import sys
import tempfile
import warnings
from contextlib import contextmanager, redirect_stderr
from dataclasses import dataclass
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any, Iterator, Sequence

import mlflow
import yaml
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

import anomaly
from anomaly.model_uri import EXPECTED, ModelURI, RegistryError, bundle_folder, parse_model_uri  # noqa: F401 - public here too
from anomaly.provenance import dataset_fingerprint, git_commit  # noqa: F401 - public here too
from anomaly.quiet import quiet, verbose

CHAMPION = "champion"
CRITERION = "test/image_auroc"  # promotion criterion (higher is better), logged when labels exist
FALLBACK_CRITERION = "painted/drawn_pixel_auroc"  # without labelled test images: painted defects (anomaly.painted)
MODEL_ARTIFACT = "model"  # name of the logged model inside each run: runs:/<run_id>/model
MODEL_CODE = Path(__file__).with_name("mlflow_model.py")
# MLflow's own tag for an experiment of trained models (its UI's "Machine learning" kind, not "GenAI apps & agents")
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
# MLflow's INFO logs (tables created, system metrics started) and download bars (anomaly.quiet; --verbose shows them)
MLFLOW_NOISE = dict(loggers=["mlflow"], env={"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"})


@dataclass(frozen=True)
class Registration:
    """A bundle logged in a run and registered: `models:/<name>/<version>`."""

    run_id: str
    experiment: str
    name: str
    version: str
    promoted: bool
    reason: str  # why the champion alias moved, or why not
    tracking_uri: str


def tracking_uri() -> str:
    """`MLFLOW_TRACKING_URI`, else MLflow 3's default `sqlite:///mlflow.db` resolved in the cwd."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def artifact_root(uri: str | None = None) -> Path | None:
    """Artifact folder of a SQLite store: `mlruns/` beside the database (MLflow's `./mlruns` for
    the default store). None for servers, which decide where artifacts go."""
    uri = uri or tracking_uri()
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri[len("sqlite:///"):]).resolve().parent / "mlruns"


def client() -> MlflowClient:
    """A client on the current store; also points mlflow's fluent API there."""
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(uri, uri)


def default_experiment(data: str) -> str:
    """One experiment per dataset: the manifest's stem or the folder's name ("mtd-sample" for the sample)."""
    if not data:
        return "mtd-sample"
    path = Path(data).resolve()
    return path.stem if path.is_file() else path.name


def experiment_id(name: str, mlflow_client: MlflowClient) -> str:
    """The id of experiment `name`, created when missing (artifacts under artifact_root()/<name>)."""
    found = mlflow_client.get_experiment_by_name(name)
    if found is None:
        root = artifact_root()
        location = (root / re.sub(r"[^\w.-]+", "_", name)).as_uri() if root else None
        try:
            return mlflow_client.create_experiment(name, artifact_location=location, tags=EXPERIMENT_KIND)
        except MlflowException:  # created meanwhile by another process
            found = mlflow_client.get_experiment_by_name(name)
            if found is None:
                raise
    if found.lifecycle_stage == "deleted":
        raise ValueError(f"MLflow experiment {name!r} is deleted; restore it in the UI or pass another --experiment")
    return found.experiment_id


def run_experiment(run_id: str) -> str:
    """The name of the experiment that holds run `run_id`."""
    mlflow_client = client()
    return mlflow_client.get_experiment(mlflow_client.get_run(run_id).info.experiment_id).name


@contextmanager
def start_run(experiment: str, run_name: str, tags: dict[str, str]) -> Iterator[str]:
    """An MLflow run with system metrics (CPU, memory, disk, GPU) and provenance tags; yields its id.
    The run ends FAILED when the block raises."""
    system = importlib.util.find_spec("psutil") is not None
    if not system:
        warnings.warn("psutil is not installed, so this run has no system metrics; `pip install psutil`",
                      stacklevel=3)
    tags = {"anomaly.version": anomaly.__version__, "git.commit": git_commit(), **tags}
    with quiet(**MLFLOW_NOISE):
        exp_id = experiment_id(experiment, client())
        with mlflow.start_run(experiment_id=exp_id, run_name=run_name, tags=tags, log_system_metrics=system) as run:
            yield run.info.run_id


def _name(key: str) -> str:
    return re.sub(r"[^\w\-./ :]+", "_", key)


def log_params(values: dict[str, Any], prefix: str = "") -> None:
    """Nested dicts flatten to `a.b`; tuples read `64x64` style only for image_size."""
    flat: dict[str, str] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update({f"{prefix}{key}.{k}": str(v) for k, v in value.items()})
        else:
            text = "x".join(map(str, value)) if key == "image_size" else str(value)
            flat[_name(prefix + key)] = text
    mlflow.log_params(flat)


def log_metrics(values: dict[str, Any], step: int | None = None) -> None:
    """Numbers only (None, NaN and strings are skipped); keys are made MLflow-safe."""
    numbers = {_name(k): float(v) for k, v in values.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool) and v == v}
    if numbers:
        mlflow.log_metrics(numbers, step=step)


def log_dict(values: dict[str, Any], path: str) -> None:
    mlflow.log_dict(values, path)


def log_figure(figure: Any, path: str) -> None:
    """A matplotlib Figure as a PNG artifact (shown inline on the run's Artifacts tab)."""
    mlflow.log_figure(figure, path)


def log_image(image: Any, path: str) -> None:
    """An (H, W, 3) uint8 array as a PNG artifact."""
    mlflow.log_image(image, artifact_file=path)


def log_artifacts(paths: Sequence[str | Path], artifact_path: str) -> None:
    """Files as artifacts of the active run, under `artifact_path` (a folder in the run's Artifacts tab)."""
    for path in paths:
        mlflow.log_artifact(str(path), artifact_path)


def set_tags(tags: dict[str, str]) -> None:
    mlflow.set_tags(tags)


def log_bundle(bundle: str | Path, register_as: str, example_image: bytes) -> str:
    """Log the bundle folder as the pyfunc model of the active run, register it; returns the version.

    Input: a DataFrame with a string column `image` (base64 of an encoded image file); output: one
    row per image with score, normalised_score, is_anomalous, threshold."""
    import pandas as pd
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    signature = ModelSignature(
        inputs=Schema([ColSpec("string", "image")]),
        outputs=Schema([ColSpec("double", "score"), ColSpec("double", "normalised_score"),
                        ColSpec("boolean", "is_anomalous"), ColSpec("double", "threshold")]))
    example = pd.DataFrame({"image": [base64.b64encode(example_image).decode("ascii")]})
    packages = ["torch", "lightning", "numpy", "pillow", "scikit-image", "safetensors", "pandas", "mlflow"]
    requirements = [f"anomaly=={anomaly.__version__}"] + [f"{p}=={installed_version(p)}" for p in packages]
    # the model's input is checked by its signature; type hints on predict would add nothing
    with quiet(warnings=[".*Add type hints to the `predict` method"], **MLFLOW_NOISE), registry_messages_off():
        info = mlflow.pyfunc.log_model(
            name=MODEL_ARTIFACT, python_model=str(MODEL_CODE), artifacts={"bundle": str(bundle)},
            signature=signature, input_example=example, pip_requirements=requirements,
            registered_model_name=register_as)
    return str(info.registered_model_version)


@contextmanager
def registry_messages_off() -> Iterator[None]:
    """MLflow prints "Successfully registered model ..." and "Created version ..." to stderr through its own
    event stream (which log_model switches back on): unless `anomaly --verbose`, stderr is held for the
    block and written out without those two lines."""
    if verbose():
        yield
        return
    held = io.StringIO()
    try:
        with redirect_stderr(held):
            yield
    finally:
        sys.stderr.write("".join(line for line in held.getvalue().splitlines(keepends=True)
                                 if not line.startswith(("Successfully registered model", "Created version"))))


def promote(name: str, version: str, *, force: bool, criterion: tuple[str, float] | None,
            fingerprint: str) -> tuple[bool, str]:
    """Move `champion` to `version` when forced (--promote), when `name` has no champion yet, or when
    `criterion` (metric key, value: CRITERION, else FALLBACK_CRITERION) beats the champion run's value of the
    same metric on the same dataset fingerprint."""
    mlflow_client = client()
    aliases = mlflow_client.get_registered_model(name).aliases
    current = aliases.get(CHAMPION)
    if force or current is None:
        reason = "--promote" if force else f"first champion of {name}"
    else:
        run = mlflow_client.get_run(mlflow_client.get_model_version(name, current).run_id).data
        if run.tags.get("dataset.fingerprint") != fingerprint:
            return False, f"champion v{current} was evaluated on other data; pass --promote to replace it"
        if criterion is None:
            return False, (f"no {CRITERION} or {FALLBACK_CRITERION} to compare with champion v{current}; "
                           "pass --promote to replace it")
        key, value = criterion
        best = run.metrics.get(key)
        if best is None or value <= best:
            return False, f"{key} {value} does not beat champion v{current} ({best})"
        reason = f"{key} {value:.4f} > {best:.4f} of v{current}"
    mlflow_client.set_registered_model_alias(name, CHAMPION, version)
    mlflow_client.set_model_version_tag(name, version, "promoted_because", reason)
    return True, reason


def _registered(name: str, mlflow_client: MlflowClient) -> Any:
    try:
        return mlflow_client.get_registered_model(name)
    except MlflowException:
        names = sorted(m.name for m in mlflow_client.search_registered_models())
        raise RegistryError(f"no registered model {name!r} in {tracking_uri()}; registered: {names or 'none'}") from None


def _alias_version(name: str, alias: str, mlflow_client: MlflowClient) -> str:
    aliases = _registered(name, mlflow_client).aliases
    if alias not in aliases:
        known = dict(sorted(aliases.items())) or "none"
        raise RegistryError(f"model {name!r} has no alias {alias!r}; its aliases: {known}")
    return str(aliases[alias])


def alias_version(uri: str) -> str | None:
    """The version `models:/<name>@<alias>` points to now (one registry query, no download); None for
    any other URI. Raises RegistryError when the model or the alias does not exist."""
    parsed = parse_model_uri(uri)
    return _alias_version(parsed.name, parsed.ref, client()) if parsed and parsed.kind == "alias" else None


def _resolve(uri: str, mlflow_client: MlflowClient) -> dict[str, Any]:
    """{uri, pinned, run_id, name, version}: `pinned` names exactly the version that was resolved."""
    parsed = parse_model_uri(uri)
    if parsed is None:
        raise RegistryError(f"{uri!r} is not a model URI; {EXPECTED}")
    if parsed.kind == "run":
        try:
            mlflow_client.get_run(parsed.name)
        except MlflowException:
            raise RegistryError(f"no MLflow run {parsed.name!r} in {tracking_uri()} (from {uri})") from None
        latest = max(mlflow_client.search_model_versions(f"run_id = '{parsed.name}'"), key=lambda v: int(v.version),
                     default=None)
        return {"uri": uri, "pinned": uri, "run_id": parsed.name, "name": latest and latest.name,
                "version": latest and str(latest.version)}
    name, version = parsed.name, parsed.ref
    if parsed.kind == "alias":
        version = _alias_version(name, parsed.ref, mlflow_client)
    else:
        _registered(name, mlflow_client)  # a missing model: the error lists the registered ones
    versions = sorted((str(v.version) for v in mlflow_client.search_model_versions(f"name = '{name}'")), key=int)
    version = versions[-1] if version == "latest" and versions else version
    if version not in versions:
        raise RegistryError(f"model {name!r} has no version {version!r}; its versions: {versions or 'none'}")
    run_id = mlflow_client.get_model_version(name, version).run_id
    return {"uri": uri, "pinned": f"models:/{name}/{version}", "run_id": run_id, "name": name, "version": version}


@contextmanager
def download_bundle(uri: str) -> Iterator[tuple[Path, dict[str, Any]]]:
    """`runs:/<id>/model`, `models:/<name>@<alias>` or `models:/<name>/<version>` -> the bundle folder
    and {uri, pinned, name, version, run_id}, for the block only: the download (files, nothing is
    unpickled) lives in a temporary folder that is removed on exit, so read what you need inside."""
    mlflow_client = client()
    info = _resolve(uri, mlflow_client)
    with tempfile.TemporaryDirectory(prefix="anomaly-model-") as target:
        try:
            with quiet(**MLFLOW_NOISE):
                local = Path(mlflow.artifacts.download_artifacts(artifact_uri=info["pinned"], dst_path=target))
        except MlflowException as error:
            raise RegistryError(f"cannot download {uri}: {error.message}") from None
        mlmodel = local / "MLmodel"
        yield bundle_folder(local, yaml.safe_load(mlmodel.read_text()) if mlmodel.is_file() else None, uri), info


def local_store() -> str:
    """The tracking URI, when it is a store on this machine the UI can be served on (not a tracking server)."""
    uri = tracking_uri()
    if uri.startswith(("http://", "https://")):
        raise ValueError(f"MLFLOW_TRACKING_URI is the tracking server {uri}: open that address in a browser, "
                         "it serves the UI; unset the variable to browse the local store instead")
    return uri


def ui_landing(url: str) -> str:
    """The page of the UI at `url` where the latest run is reviewed: the runs of its experiment (the experiment
    list when there is no run yet), in the UI's "Machine learning" view. MLflow 3's UI opens experiments in the
    GenAI view (traces) unless the `workflowType` query parameter, or the view last chosen in that browser,
    says otherwise."""
    mlflow_client = client()
    ids = [e.experiment_id for e in mlflow_client.search_experiments()]
    latest = mlflow_client.search_runs(ids, max_results=1, order_by=["attributes.start_time DESC"]) if ids else []
    page = f"experiments/{latest[0].info.experiment_id}/runs" if latest else "experiments"
    return f"{url}/#/{page}?workflowType=machine_learning"


def serve_ui(host: str, port: int) -> None:
    """Run the MLflow UI (an `mlflow server`, one worker) on the current store until interrupted."""
    from mlflow.cli import cli

    uri = local_store()
    args = ["server", "--backend-store-uri", uri, "--host", host, "--port", str(port), "--workers", "1"]
    if (root := artifact_root(uri)) is not None:
        args += ["--artifacts-destination", str(root)]
    cli.main(args=args, prog_name="mlflow", standalone_mode=False)


def log_export(uri: str, folder: str | Path, artifact_path: str = "onnx") -> str:
    """Log an `anomaly export` folder as artifacts of the run behind model `uri` (runs:/ or models:/)
    and tag the model version (when there is one) with its location; returns `runs:/<run_id>/onnx`."""
    mlflow_client = client()
    info = _resolve(uri, mlflow_client)
    mlflow_client.log_artifacts(info["run_id"], str(folder), artifact_path)
    location = f"runs:/{info['run_id']}/{artifact_path}"
    if info["name"] and info["version"]:
        mlflow_client.set_model_version_tag(info["name"], info["version"], "onnx_export", location)
    return location
