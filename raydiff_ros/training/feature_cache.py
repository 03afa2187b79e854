"""Backbone features computed once per view, for training with a frozen backbone on a CPU.

With a frozen backbone and a fixed set of crops, the features of a view never change, so they
can be computed once and reused by every iteration, by every variant alike: the denoiser then
trains at the speed of its own forward and backward pass.

Crops: C = ``crops_per_view`` (``data.cached_crops_per_view``) crops of every view are cached.
Crop 0 is the fixed, un-jittered crop (the inference crop, ``augment=False``); crops 1..C-1
are jittered like the image dataset's ``augment=True`` crops, drawn deterministically from
``SeedSequence([index, crop])`` (``index``: the view set's entry index, ``crop``: 1..C-1).
C = 1 (the default) is the fixed crop alone, i.e. no crop augmentation.

The cache is a file (``torch.save`` of plain tensors, read back with ``weights_only=True``)
holding, for S view sets of V views:

* ``features``: float16 backbone features, (S, V, F, P, P) for C = 1 (the fixed crop; the
  format of caches written before crops existed) and (S, C, V, F, P, P) for C > 1;
* ``boxes`` (C > 1 only): (S, C, V, 4) int64 pixel crop boxes of the cached crops;
* ``cameras``: K, R, t, bboxes, image_size and scene_type of every view set;
* ``key``: a string naming the shards (paths, sizes, modification times), the backbone
  configuration, the sample geometry and, for C > 1, ``crops_per_view``; a cache whose key
  differs is rebuilt (a C = 1 key is the key of caches written before crops existed).

In memory, :attr:`CachedFeatureDataset.features` is always (S, C, V, F, P, P) and
:attr:`CachedFeatureDataset.boxes` a list of S arrays (C, V, 4).

:class:`CachedFeatureDataset` then yields the samples of
:class:`~raydiff_ros.data.training_samples.SyntheticViewSetDataset` (random view subsets and
orders, normalised cameras, target rays) with ``features`` instead of ``images``; each chosen
view uses one of its C cached crops, drawn uniformly and independently per view from the
sample's rng, and the sample's geometry (``rays``, ``ndc``, ``crop_params``, ``crop_boxes``)
is that of the chosen crops. With C = 1 the samples equal those of the image dataset with
``augment=False``.
"""

from dataclasses import replace
import json
from pathlib import Path
import time
from typing import Callable, Optional

import numpy as np
import torch
from torch.utils.data import Dataset

from raydiff_ros.data.shards import read_view_set
from raydiff_ros.data.training_samples import SampleKey, SyntheticViewSetDataset, ViewSetCameras
from raydiff_ros.model.image_input import crop_and_resize
from raydiff_ros.model.network import RayDiffusionModel
from raydiff_ros.progress import Progress, no_progress

CACHE_DTYPE = torch.float16
IMAGES_PER_BATCH = 64
CAMERA_ARRAYS = ('K', 'R', 't', 'bboxes')
CACHE_ENTRIES = {'key', 'features', 'cameras'}


class FeatureCacheError(RuntimeError):
    """The feature cache cannot be built or read."""


def check_crops_per_view(crops_per_view: int) -> int:
    """``crops_per_view`` if it is an integer >= 1, else a ValueError naming it."""
    if isinstance(crops_per_view, bool) or not isinstance(crops_per_view, (int, np.integer)) \
            or crops_per_view < 1:
        raise ValueError(f'crops_per_view must be an integer >= 1, got {crops_per_view!r}')
    return int(crops_per_view)


def cache_key(dataset: SyntheticViewSetDataset, model: RayDiffusionModel,
              crops_per_view: int = 1) -> str:
    """What the cached features depend on, as one JSON string (``crops_per_view`` is named
    only when > 1, so that a one-crop key equals the key of caches without crops)."""
    shards = sorted({entry.shard for entry in dataset.entries})
    files = [[str(path), path.stat().st_size, int(path.stat().st_mtime)] for path in shards]
    cfg = dataset.config
    key = {'shards': files, 'entries': [[str(e.shard), e.index] for e in dataset.entries],
           'backbone': model.config.backbone.__dict__,
           'image_size': cfg.image_size, 'crop_mode': cfg.crop_mode,
           'num_patches': cfg.num_patches}
    if check_crops_per_view(crops_per_view) > 1:
        key['crops_per_view'] = crops_per_view
    return json.dumps(key, sort_keys=True)


class CachedFeatureDataset(Dataset):
    """Samples with precomputed ``features`` (V', F, P, P) in place of ``images``.

    Args:
        dataset: the image dataset (its config's ``augment`` is ignored: crop 0 is un-jittered,
            crops 1..C-1 jittered).
        model: the model whose (frozen) backbone computes the features.
        path: cache file; reused when its key matches, else (re)built and written.
        device: where the backbone runs while building.
        log: progress lines.
        progress: hook counting the view sets whose features are computed while building.
        crops_per_view: C, the crops cached per view (>= 1; see the module docstring).

    Attributes:
        features: (S, C, V, F, P, P) float16 cached features.
        boxes: per view set, (C, V, 4) int64 crop boxes of the cached crops.
        cameras: per view set, its :class:`ViewSetCameras`.
    """

    def __init__(self, dataset: SyntheticViewSetDataset, model: RayDiffusionModel,
                 path: Path, device: torch.device,
                 log: Optional[Callable[[str], None]] = None,
                 progress: Progress = no_progress, crops_per_view: int = 1) -> None:
        self.crops_per_view = check_crops_per_view(crops_per_view)
        self.base = SyntheticViewSetDataset(dataset.entries,
                                            replace(dataset.config, augment=False))
        self.jittered = SyntheticViewSetDataset(dataset.entries,
                                                replace(dataset.config, augment=True))
        self.log = log or (lambda line: None)
        self.progress = progress
        self.cameras: list[ViewSetCameras] = []
        self.boxes: list[np.ndarray] = []
        key = cache_key(self.base, model, self.crops_per_view)
        self.features = self._load(Path(path), key)
        if self.features is None:
            self.features = self._build(model, device)
            self._save(Path(path), key)

    def __len__(self) -> int:
        return len(self.base)

    def _fixed_boxes(self, cameras: ViewSetCameras) -> np.ndarray:
        views = np.arange(len(cameras.R))
        return self.base.crop_boxes(cameras, views, np.random.default_rng(0))

    def cached_boxes(self, cameras: ViewSetCameras, index: int) -> np.ndarray:
        """(C, V, 4) int64 boxes of the cached crops of view set ``index``: the fixed crop,
        then C - 1 jittered crops drawn from ``SeedSequence([index, crop])``."""
        views = np.arange(len(cameras.R))
        jittered = [self.jittered.crop_boxes(
            cameras, views, np.random.default_rng(np.random.SeedSequence([index, crop])))
            for crop in range(1, self.crops_per_view)]
        return np.stack([self._fixed_boxes(cameras), *jittered])

    def _load(self, path: Path, key: str) -> Optional[torch.Tensor]:
        if not path.is_file():
            return None
        try:
            data = torch.load(path, map_location='cpu', weights_only=True)
        except Exception as error:  # torch raises many types for corrupt files
            self.log(f'feature cache {path} unreadable ({error}); rebuilding')
            return None
        entries = CACHE_ENTRIES | ({'boxes'} if self.crops_per_view > 1 else set())
        if not isinstance(data, dict) or data.get('key') != key or not entries <= set(data):
            self.log(f'feature cache {path} is for other data or another backbone; rebuilding')
            return None
        stored = data['cameras']
        for i, scene_type in enumerate(stored['scene_type']):
            cameras = ViewSetCameras(*(stored[name][i].numpy() for name in CAMERA_ARRAYS),
                                     tuple(int(v) for v in stored['image_size'][i]),
                                     scene_type)
            self.cameras.append(cameras)
            self.boxes.append(data['boxes'][i].numpy() if self.crops_per_view > 1
                              else self._fixed_boxes(cameras)[None])
        features = data['features']
        self.log(f'feature cache {path}: {tuple(features.shape)}')
        return features if self.crops_per_view > 1 else features.unsqueeze(1)

    def _build(self, model: RayDiffusionModel, device: torch.device) -> torch.Tensor:
        size = self.base.config.image_size
        per_set, start = [], time.perf_counter()
        model.backbone.eval()
        pending: list[torch.Tensor] = []

        def flush() -> None:
            if pending:
                images = torch.stack(pending).to(device)
                with torch.no_grad():
                    feats = model.features(images[None])[0]
                per_set.extend(feats.to('cpu', CACHE_DTYPE).split(1))
                pending.clear()

        with self.progress('feature cache', total=len(self.base), unit='set') as bar:
            for number, entry in enumerate(self.base.entries):
                record = read_view_set(entry.shard, entry.index)
                cameras = ViewSetCameras.from_record(record)
                boxes = self.cached_boxes(cameras, number)
                self.cameras.append(cameras)
                self.boxes.append(boxes)
                threads = torch.get_num_threads()
                torch.set_num_threads(1)  # tiny resizes: thread hand-offs cost more than saved
                pending.extend(crop_and_resize(record.images[v], box, size).float()
                               for crop_boxes in boxes for v, box in enumerate(crop_boxes))
                torch.set_num_threads(threads)
                if len(pending) >= IMAGES_PER_BATCH:
                    flush()
                bar.update()
                if (number + 1) % 200 == 0:
                    self.log(f'feature cache: {number + 1}/{len(self.base)} view sets '
                             f'({time.perf_counter() - start:.0f} s)')
            flush()
        views = {len(c.R) for c in self.cameras}
        if len(views) != 1:
            raise FeatureCacheError(f'view sets have different view counts {sorted(views)}')
        features = torch.cat(per_set).reshape(len(self.base), self.crops_per_view, views.pop(),
                                              *per_set[0].shape[1:])
        self.log(f'feature cache built: {tuple(features.shape)} in '
                 f'{time.perf_counter() - start:.0f} s')
        return features

    def _save(self, path: Path, key: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix('.tmp')
        cameras = {name: torch.from_numpy(np.stack([getattr(c, name) for c in self.cameras]))
                   for name in CAMERA_ARRAYS}
        cameras['image_size'] = torch.tensor([c.image_size for c in self.cameras])
        cameras['scene_type'] = [c.scene_type for c in self.cameras]
        data = {'key': key, 'cameras': cameras}
        if self.crops_per_view > 1:
            data['features'] = self.features
            data['boxes'] = torch.from_numpy(np.stack(self.boxes))
        else:  # the one-crop layout of caches written before crops existed
            data['features'] = self.features.squeeze(1)
        torch.save(data, temporary)
        temporary.replace(path)

    def __getitem__(self, key: SampleKey) -> dict:
        index, seed = self.base.split_key(key)
        rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
        cameras = self.cameras[index]
        views = self.base.sample_views(rng, len(cameras.R))
        crops = (rng.integers(self.crops_per_view, size=len(views)) if self.crops_per_view > 1
                 else np.zeros(len(views), dtype=np.int64))
        sample = self.base.sample_geometry(cameras, views, self.boxes[index][crops, views], index)
        sample['features'] = self.features[index][torch.from_numpy(crops),
                                                  torch.from_numpy(views)].float()
        return sample
