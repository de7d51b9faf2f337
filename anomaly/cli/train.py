"""`anomaly train`: fit, calibrate, save the bundle, evaluate on the test split when there is one."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from anomaly.cli.app import app, console, user_errors
from anomaly.config import TrainConfig as D  # the defaults the help states

Opt = typer.Option


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


@app.command()
def train(
    config: Annotated[Optional[Path], Opt(help="YAML file with any of the keys below (CLI options win) "
                                               "(default: none, the defaults below)")] = None,
    model: Annotated[Optional[str], Opt(help="ae | ssim-ae | vae | dae | inpaint | twodec | ganomaly | draem "
                                             f"(docs/models.md) (default: {D.model})")] = None,
    data: Annotated[Optional[str], Opt(help="manifest CSV, MVTec-style folder or folder of normal images "
                                            "(default: the bundled MTD sample, trained with its demo settings "
                                            "anomaly/sample/demo.yaml unless --config or another --model is given)")] = None,
    out: Annotated[Optional[str], Opt(help=f"bundle folder to write (default: {D.out})")] = None,
    image_size: Annotated[Optional[str], Opt(help="model input size: 256 or HxW such as 256x640 "
                                                   "(default: the model's, 128 for draem, 256 for the others)")] = None,
    channels: Annotated[Optional[int], Opt(help=f"1 or 3; 0 guesses from the data (default: {D.channels})")] = None,
    epochs: Annotated[Optional[int], Opt(help=f"0: the model's default (docs/models.md) (default: {D.epochs})")] = None,
    batch_size: Annotated[Optional[int], Opt(help=f"images per training step (default: {D.batch_size})")] = None,
    seed: Annotated[Optional[int], Opt(help="random seed: weights, held-out normals, augmentations "
                                            f"(default: {D.seed})")] = None,
    accelerator: Annotated[Optional[str], Opt(help=f"auto | cpu | gpu (default: {D.accelerator})")] = None,
    precision: Annotated[Optional[str], Opt(help="32 | bf16-mixed | auto (bf16-mixed on a recent GPU or a CPU with "
                                                 f"AMX) (default: {D.precision})")] = None,
    lr: Annotated[Optional[float], Opt(help=f"learning rate (default: {D.lr})")] = None,
    width: Annotated[Optional[int], Opt(help=f"channels of the first stage (default: {D.width})")] = None,
    depth: Annotated[Optional[int], Opt(help=f"number of stride-2 stages (default: {D.depth})")] = None,
    latent_dim: Annotated[Optional[int], Opt(help=f"size of the bottleneck code (default: {D.latent_dim})")] = None,
    beta: Annotated[Optional[float], Opt(help=f"KL weight (vae) (default: {D.beta})")] = None,
    residual: Annotated[Optional[str], Opt(help="anomaly map: l2 | ssim | ssim+l2 (inpaint also msgms; draem "
                                                "segmentation, or another for its repair net alone) "
                                                "(default: the model's, docs/models.md)")] = None,
    smoothing_sigma: Annotated[Optional[float], Opt(help="Gaussian smoothing of the map in model pixels, 0 = off "
                                                         "(default: the model's, docs/models.md)")] = None,
    score_reduction: Annotated[Optional[str], Opt(help=f"max | topk (default: {D.score_reduction})")] = None,
    topk: Annotated[Optional[float], Opt(help="fraction of pixels averaged by --score-reduction topk "
                                              f"(default: {D.topk})")] = None,
    fpr: Annotated[Optional[float], Opt(help=f"target false-alarm rate on normal images (default: {D.fpr})")] = None,
    pixel_fpr: Annotated[Optional[float], Opt(help="target false-positive rate on normal pixels "
                                                   f"(default: {D.pixel_fpr})")] = None,
    val_fraction: Annotated[Optional[float], Opt(help="normal images held out for calibration "
                                                      f"(default: {D.val_fraction})")] = None,
    num_workers: Annotated[Optional[int], Opt(help=f"data-loading worker processes (default: {D.num_workers})")] = None,
    option: Annotated[Optional[list[str]], Opt(help="model-specific hyperparameter KEY=VALUE (YAML value), "
                                                    "repeatable, e.g. --option noise_std=0.1 (default: none)")] = None,
    evaluate: Annotated[bool, Opt(help="score the test split afterwards when there is one")] = True,
    tracking: Annotated[Optional[bool], Opt("--tracking/--no-tracking",
                                            help="log the run and register the model in MLflow "
                                                 "(default: tracking)")] = None,
    experiment: Annotated[Optional[str], Opt(help="MLflow experiment (default: the dataset's name)")] = None,
    register_as: Annotated[Optional[str], Opt(help="registered model name (default: the experiment)")] = None,
    promote: Annotated[Optional[bool], Opt("--promote", help="move the 'champion' alias to this version "
                                                             "(without it: only if it beats the champion's "
                                                             "test image AUROC on the same data, or without "
                                                             "labelled test images its painted-defect pixel "
                                                             "AUROC)")] = None,
) -> None:
    """Train on normal images, calibrate thresholds on held-out normals, write a model bundle."""
    from anomaly.cli.evaluate import run_evaluation
    from anomaly.cli.explain import defect_overlays, plain_words
    from anomaly.cli.report import report_table
    from anomaly.config import TrainConfig
    from anomaly.painted import summary
    from anomaly.training import SAMPLE_DEMO, SAMPLE_MANIFEST, train as run_training

    demo = config is None and data is None and model in (None, "draem")
    if demo:
        console.print(f"The demo: draem on the bundled MTD sample with the settings of {SAMPLE_DEMO}; "
                      "`anomaly train --data <yours>` trains on your images.")
    with user_errors():
        base = TrainConfig.from_yaml(config or SAMPLE_DEMO) if config or demo else TrainConfig()
        cfg = base.replace(model=model, data=data, out=out, image_size=image_size, channels=channels,
                           epochs=epochs, batch_size=batch_size, seed=seed, accelerator=accelerator,
                           precision=precision, lr=lr,
                           width=width, depth=depth, latent_dim=latent_dim, beta=beta, residual=residual,
                           smoothing_sigma=smoothing_sigma, score_reduction=score_reduction, topk=topk,
                           fpr=fpr, pixel_fpr=pixel_fpr,
                           val_fraction=val_fraction, num_workers=num_workers,
                           options={**base.options, **parse_options(option)} if option else None,
                           tracking=tracking, experiment=experiment, register_as=register_as, promote=promote,
                           evaluate=evaluate)
        result = run_training(cfg)
    cal = result.calibration
    console.print(f"[bold green]trained[/] {cfg.model} in {result.train_seconds:.1f} s · image threshold "
                  f"{cal.image_threshold:.4g} ({cal.method}, {cal.n_images} normals, target FPR {cal.target_fpr})")
    if line := summary(result.painted_aurocs):
        console.print(line)
    if evaluate and any(s.split == "test" for s in result.samples):
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
