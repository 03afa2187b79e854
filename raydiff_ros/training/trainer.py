"""The training loop of ``raydiff-train``.

Per iteration ``i`` (0-based; ``iteration`` counts completed ones):

1. batch keys from ``SeedSequence([seed, KEY_STREAM, i])``: ``batch_size`` view-set indices and
   one sample seed each (crop jitter, view choice); the view count N is drawn uniformly from
   [min_views, max_views] from ``SeedSequence([seed, VIEW_STREAM, i])`` and the batch keeps its
   first N views (after normalising ``views_per_sample`` views together, as officially);
2. backbone features (no gradient when the backbone is frozen), timesteps and noise from a
   torch generator seeded with ``(seed, i)``, the x0 loss (:mod:`.objectives`);
3. Adam(W) step (mixed precision on CUDA: bfloat16 autocast, or float16 with loss scaling),
   optional gradient clipping, linear LR warm-up.

Everything random depends only on the seed and the iteration, so a resumed run continues
exactly as an uninterrupted one would (up to nondeterminism of the kernels). Every
``log_interval`` iterations a record goes to ``metrics.jsonl``; every
``validation.interval`` and at the end, validation runs (:mod:`.validation`) and the curves are
redrawn; every ``checkpoint_interval`` and at the end, a checkpoint is saved
(:mod:`.checkpointing`).

Under ``torchrun`` (:mod:`.distributed`), each of the K ranks trains on its own batches of
``batch_size`` (the effective batch is K x ``batch_size``; the learning rate is not rescaled):
the batch keys and the timesteps/noise add the rank to their seed sequences, the view count N
is shared, and ``DistributedDataParallel`` averages the gradients, so all ranks keep identical
weights. Rank 0 alone logs, validates and writes; a single process runs exactly as before.
"""

from dataclasses import dataclass, replace
import math
from pathlib import Path
import time
from typing import Callable, Optional, Union

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, default_collate

from raydiff_ros.data.training_samples import (
    SampleConfig,
    SyntheticViewSetDataset,
    entries_for,
    index_view_sets,
    split_entries,
    truncate_views,
)
from raydiff_ros.inference.engine import resolve_device
from raydiff_ros.model.checkpoint import load_state
from raydiff_ros.model.config import RayDiffusionConfig, preset, with_overrides
from raydiff_ros.model.network import RayDiffusionModel
from raydiff_ros.model.pose_diffusion import (
    PoseDiffusionConfig,
    PoseDiffusionModel,
    camera_targets,
    pose_config_for_preset,
    pose_diffusion_loss,
)
from raydiff_ros.progress import Progress, no_progress
from raydiff_ros.training import camera_token, distributed
from raydiff_ros.training.checkpointing import (
    TrainingState,
    checkpoint_dir,
    latest_checkpoint,
    load_backbone_weights,
    load_checkpoint_weights,
    load_training_state,
    save_checkpoint,
)
from raydiff_ros.training.config import (
    POSE_VARIANT,
    OptimSection,
    TrainConfig,
    save_train_config,
)
from raydiff_ros.training.curves import append_record, plot_curves, read_records, truncate_records
from raydiff_ros.training.feature_cache import CachedFeatureDataset
from raydiff_ros.training.initialization import initialize_model, initialize_pose_model
from raydiff_ros.training.objectives import ray_loss, sample_timesteps
from raydiff_ros.training.validation import validate, validate_pose

KEY_STREAM = 0
VIEW_STREAM = 1
TORCH_STREAM = 2
MAX_SAMPLE_SEED = 2**62
CONFIG_FILE = 'train_config.yaml'
METRICS_FILE = 'metrics.jsonl'
CURVES_FILE = 'curves.png'


def lr_factor(optim: OptimSection, step: int) -> float:
    """Learning-rate multiplier of ``optim.lr`` after ``step`` optimiser steps (0-based).

    Linear warm-up over ``warmup_iterations``, then ``constant`` (1) or ``cosine`` (from 1 at
    the end of the warm-up to ``final_lr_fraction`` at iteration ``iterations``).
    """
    warmup = optim.warmup_iterations
    if warmup and step < warmup:
        return (step + 1) / warmup
    if optim.schedule == 'constant':
        return 1.0
    span = max(1, optim.iterations - warmup)
    progress = min(1.0, (step - warmup) / span)
    final = optim.final_lr_fraction
    return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * progress))

class TrainingError(RuntimeError):
    """Training cannot start or continue (bad setup, existing output, non-finite loss)."""


def build_model_config(config: TrainConfig) -> Union[RayDiffusionConfig, PoseDiffusionConfig]:
    """The model configuration: ``init_from``'s (or the preset), overrides, then the variant
    (``camera_token``: :func:`.camera_token.camera_token_model_config`; ``pose_diffusion``:
    the pose model on the preset's backbone)."""
    if config.variant == POSE_VARIANT:
        return pose_config_for_preset(config.model.preset, **config.model.overrides)
    if config.variant == camera_token.VARIANT:
        try:
            return camera_token.camera_token_model_config(config)
        except camera_token.CameraTokenTrainingError as error:
            raise TrainingError(str(error)) from error
    if config.model.init_from:
        base, _ = load_state(config.model.init_from, verify=False)
    else:
        base = preset(config.model.preset)
    sections = {name: dict(values) for name, values in config.model.overrides.items()}
    sections.setdefault('diffusion', {})['regression'] = config.variant == 'regression'
    return with_overrides(base, **sections)


def collate_view_sets(samples: list) -> dict:
    """Collate samples, first cutting all to the smallest view count among them."""
    count = min(int(sample['rays'].shape[0]) for sample in samples)
    batch = default_collate(samples)
    return truncate_views(batch, count) if count < batch['rays'].shape[1] else batch


class BatchKeys(torch.utils.data.Sampler):
    """Batch sampler yielding the dataset keys of iterations ``start .. stop - 1``.

    ``extra_entropy`` (the rank in a data-parallel run, else empty) is appended to the seed
    sequence so that every rank draws its own batches.
    """

    def __init__(self, num_sets: int, batch_size: int, seed: int, start: int, stop: int,
                 extra_entropy: tuple[int, ...] = ()) -> None:
        self.num_sets, self.batch_size, self.seed = num_sets, batch_size, seed
        self.start, self.stop = start, stop
        self.extra_entropy = tuple(extra_entropy)

    def keys(self, iteration: int) -> list[tuple[int, int]]:
        rng = np.random.default_rng(np.random.SeedSequence(
            [self.seed, KEY_STREAM, iteration, *self.extra_entropy]))
        indices = rng.integers(self.num_sets, size=self.batch_size)
        seeds = rng.integers(MAX_SAMPLE_SEED, size=self.batch_size)
        return [(int(i), int(s)) for i, s in zip(indices, seeds, strict=True)]

    def __iter__(self):
        for iteration in range(self.start, self.stop):
            yield self.keys(iteration)

    def __len__(self) -> int:
        return max(self.stop - self.start, 0)


def num_views_for(config: TrainConfig, iteration: int) -> int:
    """N of iteration ``iteration``: uniform in [min_views, max_views]."""
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, VIEW_STREAM, iteration]))
    return int(rng.integers(config.data.min_views, config.data.max_views + 1))


@dataclass
class TrainResult:
    """What a training run ended with."""

    iteration: int
    last_loss: float
    checkpoint: Path
    curves: Path


class LossForward(torch.nn.Module):
    """The model with its loss as ``forward``: what ``DistributedDataParallel`` wraps.

    Every computation of the step (the backbone features included) then runs inside DDP's
    forward, as DDP requires. ``loss`` is :meth:`Trainer.loss_on_batch`, which uses ``model``.
    """

    def __init__(self, model: RayDiffusionModel,
                 loss: Callable[[dict, torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.model = model
        self.loss = loss

    def forward(self, batch: dict, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return self.loss(batch, t, noise)


class Trainer:
    """Builds model, data and optimizer from a :class:`TrainConfig`; ``run()`` trains.

    Args:
        config: the training configuration.
        resume: continue from the newest checkpoint in ``output_dir`` (required when one
            exists; without one, a fresh run starts).
        log: called with each log line (default: print).
        progress: hook counting the feature-cache view sets while the cache is built, and the
            training iterations of ``run`` (from the resumed iteration on).
        context: the data-parallel context (default: from the ``torchrun`` environment; the
            single process without it). With more than one rank, the process group is joined
            here (left by :func:`.distributed.shutdown`), and ``log``/``progress`` are used on
            rank 0 only.
    """

    def __init__(self, config: TrainConfig, resume: bool = False,
                 log: Optional[Callable[[str], None]] = None,
                 progress: Progress = no_progress,
                 context: Optional[distributed.DistContext] = None) -> None:
        self.config = config
        self.dist = distributed.from_environment() if context is None else context
        self.log = log or (lambda line: print(line, flush=True))
        self.progress = progress
        if not self.dist.is_main:
            self.log, self.progress = (lambda line: None), no_progress
        self.output_dir = Path(config.output_dir)
        self.device = distributed.training_device(resolve_device(config.device), self.dist)
        distributed.init_process_group(self.dist, self.device)
        self.amp_dtype, use_scaler = self._amp_settings()
        self.model_config = build_model_config(config)
        if config.model.train_backbone and not self.model_config.backbone.weights_in_checkpoint:
            raise TrainingError(f'the {self.model_config.backbone.kind} backbone is pretrained '
                                'and not stored in checkpoints: set model.train_backbone: false')
        self.regression = config.variant == 'regression'
        self.camera_token = config.variant == camera_token.VARIANT
        self.pose = config.variant == POSE_VARIANT
        self._setup_data()
        checkpoint = latest_checkpoint(self.output_dir)
        if checkpoint is not None and not resume:
            raise TrainingError(f'{self.output_dir} already holds checkpoints; pass --resume to '
                                'continue, or choose another output_dir')
        with torch.random.fork_rng(devices=[]):  # seeded weights, global RNG left untouched
            torch.manual_seed(config.seed)
            self.model = (PoseDiffusionModel(self.model_config) if self.pose
                          else camera_token.build_model(self.model_config))
            if checkpoint is None:
                self._initialise_weights()
        self.model.to(self.device)
        self._freeze_backbone(not config.model.train_backbone)
        if config.data.feature_cache:
            self.train_set = self._cached_features(Path(config.data.feature_cache))
        parameters = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(parameters, lr=config.optim.lr,
                                           weight_decay=config.optim.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: lr_factor(config.optim, step))
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=use_scaler)
        self.iteration = 0
        if checkpoint is not None:
            self._resume(checkpoint)
        self.loss_module: Optional[DistributedDataParallel] = None
        if self.dist.enabled:  # identical start weights: DDP broadcasts rank 0's
            self.loss_module = DistributedDataParallel(
                LossForward(self.model, self.loss_on_batch),
                device_ids=[self.device.index] if self.device.type == 'cuda' else None)
        if self.dist.is_main:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            save_train_config(config, self.output_dir / CONFIG_FILE)

    # -- setup ------------------------------------------------------------------------------

    def _amp_settings(self) -> tuple[Optional[torch.dtype], bool]:
        mode = self.config.optim.amp
        if mode == 'auto':
            mode = 'bf16' if self.device.type == 'cuda' else 'off'
        if mode == 'off':
            return None, False
        if self.device.type != 'cuda':
            raise TrainingError(f'optim.amp={mode} needs a CUDA device (got {self.device})')
        return (torch.bfloat16, False) if mode == 'bf16' else (torch.float16, True)

    def _setup_data(self) -> None:
        cfg = self.config.data
        entries = index_view_sets(cfg.train)
        val_entries = entries_for(cfg.val)
        if not val_entries and cfg.holdout_sets:
            entries, val_entries = split_entries(entries, cfg.holdout_sets)
        backbone, denoiser = self.model_config.backbone, self.model_config.denoiser
        sample = SampleConfig(image_size=backbone.image_size, num_patches=denoiser.num_patches,
                              views_per_sample=cfg.views_per_sample, crop_mode=cfg.crop_mode,
                              first_camera_frame=cfg.first_camera_frame, seed=self.config.seed)
        self.train_set = SyntheticViewSetDataset(entries, sample)
        self.val_set = (SyntheticViewSetDataset(
            val_entries, replace(sample, augment=False, shuffle_views=False))
            if val_entries else None)
        self.log(f'data: {len(entries)} training view sets, {len(val_entries)} held out')

    def _cached_features(self, path: Path) -> CachedFeatureDataset:
        """The feature cache (``data.cached_crops_per_view`` crops per view); in a data-parallel
        run rank 0 builds it while the others wait."""
        crops = self.config.data.cached_crops_per_view
        if self.dist.is_main:
            dataset = CachedFeatureDataset(self.train_set, self.model, path, self.device,
                                           self.log, self.progress, crops)
        distributed.barrier(self.dist)
        if not self.dist.is_main:
            dataset = CachedFeatureDataset(self.train_set, self.model, path, self.device,
                                           self.log, self.progress, crops)
        return dataset

    def _initialise_weights(self) -> None:
        if self.config.model.init_from:
            load_checkpoint_weights(self.model, self.config.model.init_from)
            self.log(f'model: weights from {self.config.model.init_from}')
            return
        if self.pose:
            initialize_pose_model(self.model)
            self.log('model: pose diffusion, initialised from scratch')
            return
        initialize_model(self.model)
        if self.config.model.backbone_from:
            load_backbone_weights(self.model, self.config.model.backbone_from)
            self.log(f'model: backbone from {self.config.model.backbone_from}, denoiser '
                     'initialised from scratch')
        else:
            self.log('model: initialised from scratch')

    def _freeze_backbone(self, frozen: bool) -> None:
        for parameter in self.model.backbone.parameters():
            parameter.requires_grad_(not frozen)
        self.backbone_frozen = frozen

    def _resume(self, checkpoint: Path) -> None:
        load_checkpoint_weights(self.model, checkpoint)
        state = load_training_state(checkpoint)
        self.optimizer.load_state_dict(state.optimizer)
        self.scheduler.load_state_dict(state.scheduler)
        if state.scaler:
            self.scaler.load_state_dict(state.scaler)
        self.iteration = state.iteration
        if self.dist.is_main:
            truncate_records(self.output_dir / METRICS_FILE, self.iteration)
        self.log(f'resumed from {checkpoint} at iteration {self.iteration}')

    # -- one step ---------------------------------------------------------------------------

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype,
                              enabled=self.amp_dtype is not None)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Backbone features of images (B, N, 3, S, S); no gradient when frozen."""
        if self.backbone_frozen:
            self.model.backbone.eval()
            with torch.no_grad(), self._autocast():
                return self.model.features(images).float()
        with self._autocast():
            return self.model.features(images).float()

    def loss_on_batch(self, batch: dict, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """The training loss of a (truncated) batch with given timesteps and noise."""
        rays = batch['rays'].to(self.device)
        ndc = batch['ndc'].to(self.device)
        if 'features' in batch:  # precomputed by the feature cache
            features = batch['features'].to(self.device)
        else:
            features = self.features(batch['images'].to(self.device))
        with self._autocast():
            if self.pose:
                return pose_diffusion_loss(self.model, features, self.pose_targets(batch),
                                           t.to(self.device), noise.to(self.device))
            if self.camera_token:
                return camera_token.batch_loss(self.model, features, batch, self.device)
            return ray_loss(self.model, features, rays, ndc, t.to(self.device),
                            noise.to(self.device), self.regression)

    def pose_targets(self, batch: dict) -> torch.Tensor:
        """Clean camera encodings (B, N, D) of a batch (pose_diffusion)."""
        return camera_targets(*(batch[key].to(self.device) for key in
                                ('R', 't', 'K', 'crop_params', 'image_size')),
                              self.model.rotation)

    def train_step(self, batch: dict, iteration: int) -> float:
        """One optimisation step on ``batch`` (already truncated to N views); returns the loss.

        In a data-parallel run the loss returned (and checked) is the mean over the ranks.
        """
        self.model.train()
        generator = torch.Generator().manual_seed(
            int(np.random.SeedSequence([self.config.seed, TORCH_STREAM, iteration,
                                        *distributed.rank_entropy(self.dist)])
                .generate_state(1)[0]))
        t = (torch.zeros(batch['rays'].shape[0], dtype=torch.long) if self.camera_token
             else sample_timesteps(self.model.schedule, batch['rays'].shape[0],
                                   self.regression, generator, torch.device('cpu')))
        shape = (batch['rays'].shape[:2] + (self.model.camera_dim,) if self.pose
                 else batch['rays'].shape)
        noise = torch.randn(shape, generator=generator)
        if self.loss_module is None:
            loss = reported = self.loss_on_batch(batch, t, noise)
        else:
            loss = self.loss_module(batch, t, noise)
            reported = distributed.mean_across_ranks(loss.detach(), self.dist)
        if not torch.isfinite(reported):
            raise TrainingError(f'non-finite loss at iteration {iteration}')
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.config.optim.grad_clip_norm > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(
                [p for p in self.model.parameters() if p.requires_grad],
                self.config.optim.grad_clip_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return float(reported.detach())

    # -- loop -------------------------------------------------------------------------------

    def _loader(self, start: int, stop: int) -> DataLoader:
        keys = BatchKeys(len(self.train_set), self.config.optim.batch_size, self.config.seed,
                         start, stop, tuple(distributed.rank_entropy(self.dist)))
        workers = self.config.data.num_workers
        return DataLoader(self.train_set, batch_sampler=keys, num_workers=workers,
                          collate_fn=collate_view_sets, persistent_workers=False,
                          pin_memory=self.device.type == 'cuda')

    def _validate_and_plot(self) -> dict:
        record = {'iteration': self.iteration}
        if self.val_set is not None and self.config.validation.num_sets > 0:
            val = self.config.validation
            if self.camera_token:
                result = camera_token.validate(self.model, self.val_set, val.num_sets,
                                               val.num_views, self.device)
            elif self.pose:
                result = validate_pose(self.model, self.val_set, val.num_sets, val.num_views,
                                       val.num_samples, val.loss_timesteps, self.device)
            else:
                result = validate(self.model, self.val_set, val.num_sets, val.num_views,
                                  val.num_samples, val.loss_timesteps, self.regression,
                                  self.device)
            record.update(result.to_record())
            self.log(f'[{self.iteration}] validation: loss {result.loss:.4f}, rotation acc@15 '
                     f'{result.rotation_accuracy:.3f}, centre acc@0.1 '
                     f'{result.camera_center_accuracy:.3f}, mean rotation error '
                     f'{result.mean_rotation_error_deg:.1f} deg, failures {result.failures}/'
                     f'{result.num_sets}')
            append_record(self.output_dir / METRICS_FILE, record)
        self.plot()
        return record

    def plot(self) -> Path:
        """Redraw ``curves.png`` from ``metrics.jsonl``."""
        return plot_curves(read_records(self.output_dir / METRICS_FILE),
                           self.output_dir / CURVES_FILE,
                           title=f'{self.config.variant} - {self.output_dir.name}')

    def save(self) -> Path:
        state = TrainingState(iteration=self.iteration, optimizer=self.optimizer.state_dict(),
                              scheduler=self.scheduler.state_dict(),
                              scaler=self.scaler.state_dict() if self.scaler.is_enabled()
                              else {})
        path = save_checkpoint(self.output_dir, self.model, state, self.config.keep_checkpoints)
        self.log(f'[{self.iteration}] checkpoint {path}')
        return path

    def run(self) -> TrainResult:
        """Train up to ``optim.iterations`` iterations (from the resumed iteration).

        In a data-parallel run every rank returns once rank 0 has written its last checkpoint.
        """
        result = self._run()
        distributed.barrier(self.dist)  # rank 0's last checkpoint is on disk for everyone
        return result

    def _run(self) -> TrainResult:
        cfg = self.config
        main = self.dist.is_main
        total = cfg.optim.iterations
        losses, interval_start, last_loss = [], time.perf_counter(), float('nan')
        checkpoint = None
        with self.progress('train', total=total, unit='it', initial=self.iteration) as bar:
            for batch in self._loader(self.iteration, total):
                batch = truncate_views(batch, min(num_views_for(cfg, self.iteration),
                                                  batch['rays'].shape[1]))
                last_loss = self.train_step(batch, self.iteration)
                losses.append(last_loss)
                self.iteration += 1
                bar.update()
                if not main:  # rank 0 alone logs, validates and saves
                    losses.clear()
                    continue
                if self.iteration % cfg.log_interval == 0 or self.iteration == total:
                    seconds = time.perf_counter() - interval_start
                    record = {'iteration': self.iteration, 'loss': float(np.mean(losses)),
                              'lr': self.scheduler.get_last_lr()[0], 'seconds': seconds}
                    append_record(self.output_dir / METRICS_FILE, record)
                    self.log(f'[{self.iteration}/{total}] loss {record["loss"]:.4f} '
                             f'({seconds / len(losses):.2f} s/it)')
                    losses, interval_start = [], time.perf_counter()
                if self.iteration % cfg.validation.interval == 0 or self.iteration == total:
                    self._validate_and_plot()
                if self.iteration % cfg.checkpoint_interval == 0 or self.iteration == total:
                    checkpoint = self.save()
        if checkpoint is None and main:
            checkpoint = latest_checkpoint(self.output_dir) or self.save()
            self.plot()
        if checkpoint is None:  # another rank: rank 0 writes the checkpoints
            checkpoint = checkpoint_dir(self.output_dir, self.iteration)
        return TrainResult(iteration=self.iteration, last_loss=last_loss, checkpoint=checkpoint,
                           curves=self.output_dir / CURVES_FILE)
