"""`anomaly train`: fit, calibrate, save the bundle, evaluate on the test split when there is one."""

import dataclasses
import inspect
import time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from anomaly.cli.app import app, console, user_errors
from anomaly.config import AUTO_SCALE, TrainConfig
from anomaly.models import OPTIONS, option_defaults, options_class

KEYWORD = inspect.Parameter.KEYWORD_ONLY


def parse_options(pairs: list[str]) -> dict:
    """["noise_std=0.1", "masks=[8, 16]"] -> {"noise_std": 0.1, "masks": [8, 16]} (values parsed as YAML)."""
    import yaml

    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--option expects KEY=VALUE, got {pair!r}")
        options[key.strip()] = yaml.safe_load(value)
    return options


def epochs_trained(trained: int, asked: int, fills_budget: bool, time_budget: float) -> str:
    """The summary's epoch count: where fewer ran than asked, whether the budget cut them or filling it was the plan
    (`fills_budget`: the model's budget_epochs were asked, anomaly.models.default_epochs)."""
    if trained == asked:
        return f"{trained} epochs"
    if fills_budget:
        return f"{trained} epochs, as many as fit --time-budget {time_budget:g} minutes (at most {asked})"
    return f"{trained} of {asked} epochs (the rest did not fit --time-budget {time_budget:g} minutes)"


def cli_parameter(f: dataclasses.Field) -> inspect.Parameter:
    """The `anomaly train` option of TrainConfig field `f`: `--<name>` (a bool: `--<name>/--no-<name>`; options:
    repeated `--option KEY=VALUE`), None when not given (the YAML file's value or the field's default)."""
    default = f.default_factory() if f.default is dataclasses.MISSING else f.default
    help = f.metadata["help"]
    if f.name == "options":
        listed = "; ".join(f"{name}: {', '.join(f'{k}={v!r}' for k, v in option_defaults(name).items())}"
                           for name in OPTIONS if option_defaults(name))
        return inspect.Parameter("option", KEYWORD, default=None, annotation=Annotated[Optional[list[str]],
                                 typer.Option(help=f"{help}; the models' and their defaults: {listed} (default: none)")])
    if "(default:" not in help:
        help += f" (default: {default if default != '' else 'none'})"
    kind = f.type.split(" | ")[0]  # "int", "float | None", "tuple[int, int] | None", ...
    if kind == "bool":
        flag = f"--{f.name.replace('_', '-')}"
        return inspect.Parameter(f.name, KEYWORD, default=None, annotation=Annotated[
            Optional[bool], typer.Option(f"{flag}/--no-{flag[2:]}", help=help)])
    value_type = {"int": int, "float": float}.get(kind, str)  # image_size: "256" or "HxW", parsed by replace
    return inspect.Parameter(f.name, KEYWORD, default=None,
                             annotation=Annotated[Optional[value_type], typer.Option(help=help)])


def train(config: Optional[Path] = None, option: Optional[list[str]] = None, **given: Any) -> None:
    """Train on normal images, calibrate thresholds on held-out normals, write a model bundle."""
    started = time.perf_counter()  # --time-budget counts from here: the imports below take seconds
    from anomaly.cli.evaluate import run_evaluation
    from anomaly.cli.explain import defect_overlays, plain_words
    from anomaly.cli.report import report_table
    from anomaly.painted import summary
    from anomaly.training import SAMPLE_DEMO, SAMPLE_MANIFEST, train as run_training

    demo = config is None and given["data"] is None and given["model"] in (None, "draem")
    if demo:
        console.print(f"The demo: draem on the bundled MTD sample with the settings of {SAMPLE_DEMO}; "
                      "`anomaly train --data <yours>` trains on your images.")
    with user_errors():
        base = TrainConfig.from_yaml(config or SAMPLE_DEMO) if config or demo else TrainConfig()
        cfg = base.replace(**given, options={**base.options, **parse_options(option)} if option else None)
        result = run_training(cfg, started=started)
    if result is None:  # a DDP rank other than 0: it took part in the fit, rank 0 reports
        return
    cal = result.calibration
    trained, asked = result.config.epochs, result.epochs_asked
    fills_budget = not cfg.epochs and hasattr(options_class(cfg.model), "budget_epochs")
    epochs = epochs_trained(trained, asked, fills_budget, cfg.time_budget)
    console.print(f"[bold green]trained[/] {cfg.model} for {epochs} in {result.train_seconds:.1f} s · image threshold "
                  f"{cal.image_threshold:.4g} ({cal.method}, {cal.n_images} normals, target FPR {cal.target_fpr})")
    if cfg.scale == AUTO_SCALE:
        size = result.model_config.image_size
        console.print(f"scale auto: {result.config.scale:g} (the training images' median short side to the "
                      f"{min(size)} px of the {size[0]}x{size[1]} crops; images are scored tile by tile)")
    if line := summary(result.painted_aurocs):
        console.print(line)
    if cfg.evaluate and any(s.split == "test" for s in result.samples):
        report = result.report or run_evaluation(str(result.bundle_path), cfg.data or str(SAMPLE_MANIFEST), "test",
                                                 cfg.batch_size)
        console.print(report_table(report, title=f"{cfg.model} on the test split"))
        overlays = defect_overlays(result.bundle_path, result.samples, Path(result.bundle_path) / "overlays")
        for line in plain_words(report, len(overlays)):
            console.print(line)
        if overlays:
            console.print(f"Open the heatmap of a detected defect (regions boxed, each with its peak): "
                          f"[bold]{overlays[0]}[/] ({len(overlays)} in {overlays[0].parent})")
    if (r := result.registration) is not None:
        console.print(f"MLflow run [bold]{r.run_id}[/] in experiment {r.experiment!r} ({r.tracking_uri}) · "
                      f"model [bold]models:/{r.name}/{r.version}[/] · champion: "
                      f"{'yes' if r.promoted else 'no'} ({r.reason}) · browse with `anomaly ui`")
    console.print(f"model bundle: [bold]{result.bundle_path}[/]  (score with "
                  f"`anomaly evaluate --model {result.bundle_path}`)")


train.__signature__ = inspect.Signature([
    inspect.Parameter("config", KEYWORD, default=None, annotation=Annotated[Optional[Path], typer.Option(
        help="YAML file with any of the keys below (CLI options win) (default: none, the defaults below)")]),
    *(cli_parameter(f) for f in dataclasses.fields(TrainConfig) if "help" in f.metadata),
])
app.command()(train)
