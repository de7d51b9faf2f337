"""`train`: fit a model on normal images, calibrate it on the held-out normals, write the bundle."""

from __future__ import annotations

import dataclasses
import datetime
import math
import statistics
import sys
import time
import warnings
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import lightning as L
import numpy as np
import torch

from anomaly.backends import TorchScorer, score_images
from anomaly.bundle import Bundle, save_bundle
from anomaly.calibration import Calibration, calibrate
from anomaly.config import AUTO_SCALE, ModelConfig, TrainConfig
from anomaly.data import AnomalyDataModule, Sample, decode_image, guess_channels, image_shape, load_samples
from anomaly.detector import Detector, score_in_batches
from anomaly.models import build_model, default_epochs, options_class, resolve_options
from anomaly.painted import (DRAWS, MAX_IMAGES, MAX_PIXELS, SPREAD_IMAGES, held_out_checks, normal_batches,
                             painted_aurocs, reconstruction_spread)
from anomaly.quiet import quiet
from anomaly.tiling import scale_for

if TYPE_CHECKING:
    from anomaly.evaluation import MetricReport
    from anomaly.tracking import Registration

SAMPLE_MANIFEST = files("anomaly") / "sample" / "manifest.csv"
SAMPLE_DEMO = files("anomaly") / "sample" / "demo.yaml"  # `anomaly train`'s settings with no --data


@dataclass(frozen=True)
class TrainResult:
    config: TrainConfig  # as trained: the epochs trained (within the time budget), precision "auto" resolved
    bundle_path: Path
    model_config: ModelConfig
    calibration: Calibration
    samples: list[Sample]  # everything the data source listed (train, validation and test)
    val_samples: list[Sample]
    train_seconds: float
    epoch_losses: list[dict[str, float]]  # per epoch, the logged train/ and val/ means
    painted_aurocs: dict[str, float]  # anomaly.painted.held_out_checks: painted AUROCs, reconstruction spread
    epochs_asked: int  # the model's default or --epochs; config.epochs is lower when the time budget cut it
    report: MetricReport | None = None  # test-split metrics (tracked runs with a test split)
    registration: Registration | None = None  # MLflow run and registered model version (tracked runs)


def score_samples(model: torch.nn.Module, config: ModelConfig, samples: Sequence[Sample],
                  batch_size: int = 16) -> tuple[np.ndarray, list[np.ndarray]]:
    """Image scores (N,) and maps [(h, w)] at model scale, exactly as the Detector computes them (score_arrays)."""
    scorer = TorchScorer(model, config, next(model.parameters()).device)
    return score_in_batches(scorer, config, lambda s: decode_image(s.image, config.channels), samples, batch_size)


def calibrate_model(model: torch.nn.Module, config: ModelConfig, normals: Sequence[Sample], *,
                    fpr: float, pixel_fpr: float) -> Calibration:
    """Thresholds from normal images that the model did not train on."""
    scores, maps = score_samples(model, config, normals)
    return calibrate(scores, maps, fpr=fpr, pixel_fpr=pixel_fpr)


def check_scoring_path(model: torch.nn.Module, config: ModelConfig) -> None:
    """Run the whole scoring path once on a blank batch before training, so that a bad residual,
    reduction or image size fails now, not after the last epoch."""
    try:
        score_images(model.eval(), config, torch.zeros(1, config.channels, *config.image_size))
    except (ValueError, RuntimeError) as error:
        raise ValueError(f"model {config.name!r} cannot score {config.image_size[0]}x{config.image_size[1]} "
                         f"images with these settings: {error}") from error
    model.train()


VALIDATIONS = 4  # validation runs per training (the held-out normals' val/* losses), see validation_epochs


def validation_epochs(epochs: int, times: int = VALIDATIONS) -> frozenset[int]:
    """The 0-based epochs after which the fit validates: `times` evenly spaced, the last epoch always
    among them, every epoch when there are no more than `times` (240 epochs: 59, 119, 179, 239)."""
    return frozenset(math.ceil(epochs * i / times) - 1 for i in range(1, times + 1))


class ValidationSchedule(L.Callback):
    """Validate only after the epochs `validation_epochs(trainer.max_epochs)` names (read at every epoch: a
    time budget may lower max_epochs during the fit). Lightning validates after an epoch when (epoch + 1) is a
    multiple of `trainer.check_val_every_n_epoch`, which it reads at every epoch: 1 on a validation epoch,
    past the end otherwise. A validation after every epoch cost draem's demo (240 short epochs) a fifth of its
    CPU time (347 s against 280 s, one thread); the val/* losses are for monitoring only (calibration is a
    separate step)."""

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        chosen = trainer.current_epoch in validation_epochs(trainer.max_epochs)
        trainer.check_val_every_n_epoch = 1 if chosen else trainer.max_epochs + 1


def after_fit_seconds(model: L.LightningModule, held_out: Sequence[Sample], *, fpr: float, pixel_fpr: float,
                      count: int = 8) -> float:
    """Seconds the work after the fit will take on `held_out` (the calibration, the detector, then
    `held_out_checks`: each painted draw over at most MAX_IMAGES, or at a scale MAX_PIXELS, the spread over at
    most SPREAD_IMAGES), estimated now, on the model's device, by doing that work on the first `count` of them
    with one draw of each recipe, after an untimed image to warm up (an untrained network scores as fast as a
    trained one). The model's mode and the random streams are left as they were."""
    config, sample, training, device = model.config, held_out[:count], model.training, model.device
    with (torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []),
          warnings.catch_warnings()):
        warnings.simplefilter("ignore")  # a threshold from so few normals warns
        model.eval()
        calibrate_model(model, config, sample[:1], fpr=fpr, pixel_fpr=pixel_fpr)
        clock = [time.perf_counter()]
        calibration = calibrate_model(model, config, sample, fpr=fpr, pixel_fpr=pixel_fpr)
        clock.append(time.perf_counter())
        detector = Detector(Bundle(config, model.state_dict(), calibration), device=str(device))
        clock.append(time.perf_counter())
        painted_aurocs(detector, normal_batches(sample, config.channels, config.scale), draws=1)
        clock.append(time.perf_counter())
        reconstruction_spread(detector, sample)
        clock.append(time.perf_counter())
    model.train(training)
    calibrating, building, painting, spreading = (end - start for start, end in zip(clock, clock[1:]))
    n, painted = len(held_out), min(len(held_out), MAX_IMAGES)
    if config.scale is not None:
        pixels = statistics.mean(math.prod(image_shape(s.image)) for s in sample) * config.scale**2
        painted = min(painted, math.ceil(MAX_PIXELS / pixels))
    return building + (calibrating * n + painting * DRAWS * painted + spreading * min(n, SPREAD_IMAGES)) / len(sample)


def duration(seconds: float) -> str:
    return f"{seconds / 60:.1f} minutes" if seconds >= 60 else f"{max(seconds, 0):.0f} s"


class TimeBudget(L.Callback):
    """Keep `anomaly train` within `minutes` of wall time from `started` (the command's imports and the data loading
    included) to the bundle and its painted validation. As the fit starts, `after_fit(model)` estimates the work
    after it (seconds; `after_fit_seconds`), with a warning when that alone leaves no room for an epoch; after every
    epoch, the fit is set to the epochs that fit the time left at the mean epoch time so far (validations included),
    less that work. Never more epochs than asked for, never fewer than done (then it stops). The count is
    `trainer.fit_loop.max_epochs`: the validation schedule and a learning-rate schedule that reads
    `trainer.estimated_stepping_batches` at each step (draem's cosine) follow it. Global rank 0 decides and
    broadcasts, so every DDP rank stops together."""

    def __init__(self, minutes: float, started: float, after_fit: Callable[[L.LightningModule], float]) -> None:
        self.minutes, self.deadline, self.estimate = minutes, started + minutes * 60, after_fit

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.after_fit = self.estimate(pl_module) if trainer.is_global_zero else 0.0  # rank 0 decides
        self.start, self.asked = time.perf_counter(), trainer.max_epochs
        left = self.deadline - self.start
        if trainer.is_global_zero and self.after_fit >= left:
            warnings.warn(f"--time-budget {self.minutes:g} minutes cannot be kept: the work after the fit "
                          f"(calibration and painted validation on the held-out normals) will take about "
                          f"{duration(self.after_fit)}, more than the {duration(left)} left; one epoch trains. "
                          "Raise the budget or choose a faster model", stacklevel=1)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        now, done = time.perf_counter(), trainer.current_epoch + 1
        per_epoch = (now - self.start) / done
        left = self.deadline - now - self.after_fit
        fitting = max(done, min(self.asked, done + int(left / per_epoch)))
        trainer.fit_loop.max_epochs = int(trainer.strategy.broadcast(fitting, src=0))


class EpochLosses(L.Callback):
    """Keeps the per-epoch means Lightning logged, for the result and for MLflow: train/* every epoch,
    val/* after the epochs that validated. Under DDP each rank logged the mean over its own share of
    the images; the kept value is the mean over the ranks (the shares are equal in size: Lightning's
    DistributedSampler pads the last one with repeated images), and only global rank 0 calls `on_epoch`."""

    def __init__(self, on_epoch: Callable[..., None] | None = None) -> None:
        self.history: list[dict[str, float]] = []
        self.on_epoch = on_epoch  # called as on_epoch(values, step=epoch), e.g. tracking.log_metrics
        self.validated = -1  # the last epoch that ended with a validation

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.validated = trainer.current_epoch

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        fresh = self.validated == trainer.current_epoch  # else val/* are the last validation's values
        keys = sorted(k for k in trainer.callback_metrics if "/" in k and (fresh or not k.startswith("val/")))
        values = torch.tensor([float(trainer.callback_metrics[k]) for k in keys], device=pl_module.device)
        if trainer.world_size > 1:  # a collective: every rank runs this callback
            values = trainer.strategy.reduce(values, reduce_op="mean")
        self.history.append(dict(zip(keys, values.tolist())))
        if self.on_epoch and trainer.is_global_zero:
            self.on_epoch(self.history[-1], step=trainer.current_epoch)


class EpochLines(L.Callback):
    """One line per epoch on stdout from global rank 0, for logs (the progress bar when stdout is not a
    terminal), with the losses `losses` kept (a callback before this one):
    `epoch 3/30 · train/loss 0.0123 · val/loss 0.0130 · 4.2 s · ETA 0:01:52`."""

    def __init__(self, losses: EpochLosses) -> None:
        self.losses = losses

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.start = time.perf_counter()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.epoch_start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        now, done, total = time.perf_counter(), trainer.current_epoch + 1, trainer.max_epochs
        latest = self.losses.history[-1]
        losses = [f"{k} {latest[k]:.4g}" for k in ("train/loss", "val/loss") if k in latest]
        eta = datetime.timedelta(seconds=round((now - self.start) / done * (total - done)))
        print(" · ".join([f"epoch {done}/{total}", *losses, f"{now - self.epoch_start:.1f} s", f"ETA {eta}"]),
              flush=True)


# Lightning's and torch's chatter during a fit (anomaly.quiet; `anomaly --verbose` shows it)
# (under DDP, the advice to sync each logged value: EpochLosses averages the epoch means over the ranks)
LIGHTNING_NOISE = dict(warnings=[r"`isinstance\(treespec, LeafSpec\)` is deprecated",
                                 r"It is recommended to use `self.log\(.*sync_dist=True"],
                       loggers=["lightning.pytorch", "lightning.fabric"])


def resolve_precision(precision: str, accelerator: str) -> str:
    """"auto" -> "bf16-mixed" where training will run on hardware that computes bfloat16 fast (a CUDA
    GPU that supports it; a CPU with AMX), else "32"; any other value is returned unchanged. A CPU
    with AVX512-BF16 but no AMX trains draem no faster in bf16 than in float32 (experiments/RESULTS.md,
    "What we tried"), so it gets float32's numerics."""
    if precision != "auto":
        return precision
    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        native = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    else:
        native = accelerator in ("cpu", "auto") and torch.cpu._is_amx_tile_supported()
    return "bf16-mixed" if native else "32"


def train(config: TrainConfig, *, logger: Any = False, progress: bool = True,
          callbacks: Sequence[L.Callback] = (), started: float | None = None) -> TrainResult | None:
    """Train `config.model` on the normal training images of `config.data` and write a bundle to `config.out`.
    `config.time_budget` counts from `started`, a `time.perf_counter()` reading (default: now; `anomaly train`
    passes the moment the command began, so that its imports count).

    With `config.tracking` the whole training is one MLflow run (see `anomaly.tracking`): params,
    per-epoch losses, calibration, test metrics and plots, and the bundle as a registered model.
    `callbacks`: extra Lightning callbacks (e.g. a benchmark's snapshots of the weights).

    Distributed (`config.devices` processes on each of `config.num_nodes` nodes, Lightning DDP): every
    process runs this function (Lightning's launcher re-runs the command once per further local rank)
    and takes part in the fit, each on its share of the training images; then global rank 0 alone
    calibrates and validates on the whole held-out slice, writes the bundle and logs to MLflow, and the
    other ranks return None."""
    started = time.perf_counter() if started is None else started  # the time budget counts from here
    samples = load_samples(config.data or str(SAMPLE_MANIFEST))
    model_defaults = config.model_config(channels=1)  # ModelConfig resolves the unset size and smoothing
    config = config.replace(epochs=config.epochs or default_epochs(config.model, config.time_budget),  # as asked
                            image_size=model_defaults.image_size, smoothing_sigma=model_defaults.smoothing_sigma,
                            precision=resolve_precision(config.precision, config.accelerator))
    fit = _prepare(config, samples, started, logger=logger, progress=progress, callbacks=callbacks)
    if not config.tracking or not fit.trainer.is_global_zero:  # one MLflow run, from rank 0
        return _run(fit)
    from anomaly import tracking
    from anomaly.run_logging import log_training

    experiment = config.experiment or tracking.default_experiment(config.data)
    fingerprint = tracking.dataset_fingerprint(samples)
    tags = {"anomaly.kind": "train", "dataset.fingerprint": fingerprint,
            "dataset.path": config.data or "bundled MTD sample"}
    with tracking.start_run(experiment, f"train-{config.model}", tags) as run_id:
        tracking.log_params(dataclasses.asdict(config))
        result = _run(fit, on_epoch=tracking.log_metrics)
        return log_training(config, result, run_id=run_id, experiment=experiment, fingerprint=fingerprint)


def _strategy(config: TrainConfig) -> str:
    """"ddp" for more than one process, whatever `config.strategy`: Lightning's "auto" would pick a forking
    strategy in a notebook, whose ranks' callbacks (losses, MLflow) run in processes that then vanish;
    "ddp" refuses a notebook with Lightning's own error instead."""
    return "ddp" if config.devices > 1 or config.num_nodes > 1 else config.strategy


@dataclass(frozen=True)
class _Fit:
    """A fit ready to run, built alike on every rank: the data, the model and its Trainer."""

    config: TrainConfig
    samples: list[Sample]
    datamodule: AnomalyDataModule
    model_config: ModelConfig
    model: L.LightningModule
    trainer: L.Trainer
    losses: EpochLosses


def _prepare(config: TrainConfig, samples: list[Sample], started: float, *, logger: Any, progress: bool,
             callbacks: Sequence[L.Callback]) -> _Fit:
    """Data, model and Trainer; the Trainer knows the process's global rank (Lightning DDP) before the fit."""
    train_normals = [s for s in samples if s.split == "train" and s.label == 0]
    channels = config.channels or guess_channels([s.image for s in train_normals])
    if config.scale == AUTO_SCALE:
        tile = config.image_size or options_class(config.model).image_size
        config = config.replace(scale=scale_for([image_shape(s.image) for s in train_normals], tile))
    model_config = resolve_options(config.model_config(channels))
    L.seed_everything(config.seed, workers=True, verbose=False)
    # the held-out slice depends on the seed and the image paths alone: the same on every rank
    datamodule = AnomalyDataModule(samples, config.image_size, channels, batch_size=config.batch_size,
                                   val_fraction=config.val_fraction, seed=config.seed,
                                   num_workers=config.num_workers, scale=config.scale)
    if not datamodule.val_samples:
        raise ValueError(f"no held-out normal images to calibrate on: {len(train_normals)} training normal(s) "
                         f"and val-fraction {config.val_fraction}; give at least 2 training normals")
    model = build_model(model_config)
    check_scoring_path(model, model_config)
    losses = EpochLosses()
    callbacks = [losses, ValidationSchedule(), *callbacks]
    if config.time_budget:
        callbacks.append(TimeBudget(config.time_budget, started, lambda model: after_fit_seconds(
            model, datamodule.val_samples, fpr=config.fpr, pixel_fpr=config.pixel_fpr)))
    bars = progress and sys.stdout.isatty()  # Rich bars on a terminal, one line per epoch in a log
    if progress:
        callbacks.append(L.pytorch.callbacks.RichProgressBar() if bars else EpochLines(losses))
    with quiet(**LIGHTNING_NOISE):
        trainer = L.Trainer(
            max_epochs=config.epochs, accelerator=config.accelerator, precision=config.precision,
            devices=config.devices, num_nodes=config.num_nodes, strategy=_strategy(config),
            logger=logger, callbacks=callbacks, enable_checkpointing=False, enable_model_summary=False,
            enable_progress_bar=bars, deterministic="warn", log_every_n_steps=1, num_sanity_val_steps=0)
    return _Fit(config, samples, datamodule, model_config, model, trainer, losses)


def _run(fit: _Fit, on_epoch: Callable[..., None] | None = None) -> TrainResult | None:
    """Fit; then, on global rank 0 alone, calibrate on the whole held-out slice, save the bundle and
    validate on painted defects (no MLflow here). Other ranks return None after the fit."""
    config, model, model_config, trainer = fit.config, fit.model, fit.model_config, fit.trainer
    fit.losses.on_epoch = on_epoch
    with quiet(**LIGHTNING_NOISE):
        # Deterministic mode also fills each new tensor with NaN, a debugging aid for reads of uninitialised
        # memory that changes no result and cost 5% of a draem training step on a CPU, 29% on a GPU
        # (experiments/bench_step.py)
        torch.utils.deterministic.fill_uninitialized_memory = False
        start = time.perf_counter()
        trainer.fit(model, fit.datamodule)
        train_seconds = time.perf_counter() - start
    if not trainer.is_global_zero:
        return None
    asked, config = config.epochs, config.replace(epochs=trainer.current_epoch)
    model.eval()
    held_out = fit.datamodule.val_samples  # all of them: the datamodule's list, not rank 0's share of its loader
    calibration = calibrate_model(model, model_config, held_out, fpr=config.fpr,
                                  pixel_fpr=config.pixel_fpr)
    path = save_bundle(config.out, model_config, model.state_dict(), calibration)
    device = str(next(model.parameters()).device)
    detector = Detector(Bundle(model_config, model.state_dict(), calibration), device=device)
    painted = held_out_checks(detector, held_out)
    return TrainResult(config, path, model_config, calibration, fit.samples, held_out, train_seconds,
                       fit.losses.history, painted, asked)
