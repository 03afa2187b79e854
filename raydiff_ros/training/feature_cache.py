"""Backbone features computed once per view, for training with a frozen backbone on a CPU.

With a frozen backbone and fixed crops (no crop jitter), the features of a view never change,
so they can be computed once and reused by every iteration, by the diffusion and the
regression run alike: the denoiser then trains at the speed of its own forward and backward
pass. The cache is a file (``torch.save`` of plain tensors, read back with
``weights_only=True``) holding, for S view sets of V views:

* ``features`` (S, V, F, P, P) float16 backbone features of the fixed crop of every view;
* ``cameras``: K, R, t, bboxes, image_size and scene_type of every view set;
* ``key``: a string naming the shards (paths, sizes, modification times), the backbone
  configuration and the sample geometry; a cache whose key differs is rebuilt.

:class:`CachedFeatureDataset` then yields the same samples as
:class:`~raydiff_ros.data.training_samples.SyntheticViewSetDataset` with ``augment=False``
(random view subsets and orders, normalised cameras, target rays) but with ``features``
instead of ``images``.
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


def cache_key(dataset: SyntheticViewSetDataset, model: RayDiffusionModel) -> str:
    """What the cached features depend on, as one JSON string."""
    shards = sorted({entry.shard for entry in dataset.entries})
    files = [[str(path), path.stat().st_size, int(path.stat().st_mtime)] for path in shards]
    cfg = dataset.config
    return json.dumps({'shards': files, 'entries': [[str(e.shard), e.index]
                                                    for e in dataset.entries],
                       'backbone': model.config.backbone.__dict__,
                       'image_size': cfg.image_size, 'crop_mode': cfg.crop_mode,
                       'num_patches': cfg.num_patches}, sort_keys=True)


class CachedFeatureDataset(Dataset):
    """Samples with precomputed ``features`` (V', F, P, P) in place of ``images``.

    Args:
        dataset: the image dataset (its config's ``augment`` is turned off).
        model: the model whose (frozen) backbone computes the features.
        path: cache file; reused when its key matches, else (re)built and written.
        device: where the backbone runs while building.
        log: progress lines.
        progress: hook counting the view sets whose features are computed while building.
    """

    def __init__(self, dataset: SyntheticViewSetDataset, model: RayDiffusionModel,
                 path: Path, device: torch.device,
                 log: Optional[Callable[[str], None]] = None,
                 progress: Progress = no_progress) -> None:
        self.base = SyntheticViewSetDataset(dataset.entries,
                                            replace(dataset.config, augment=False))
        self.log = log or (lambda line: None)
        self.progress = progress
        self.cameras: list[ViewSetCameras] = []
        self.boxes: list[np.ndarray] = []
        key = cache_key(self.base, model)
        self.features = self._load(Path(path), key)
        if self.features is None:
            self.features = self._build(model, device)
            self._save(Path(path), key)

    def __len__(self) -> int:
        return len(self.base)

    def _fixed_boxes(self, cameras: ViewSetCameras) -> np.ndarray:
        views = np.arange(len(cameras.R))
        return self.base.crop_boxes(cameras, views, np.random.default_rng(0))

    def _load(self, path: Path, key: str) -> Optional[torch.Tensor]:
        if not path.is_file():
            return None
        try:
            data = torch.load(path, map_location='cpu', weights_only=True)
        except Exception as error:  # torch raises many types for corrupt files
            self.log(f'feature cache {path} unreadable ({error}); rebuilding')
            return None
        if not isinstance(data, dict) or data.get('key') != key or not CACHE_ENTRIES <= set(data):
            self.log(f'feature cache {path} is for other data or another backbone; rebuilding')
            return None
        stored = data['cameras']
        for i, scene_type in enumerate(stored['scene_type']):
            cameras = ViewSetCameras(*(stored[name][i].numpy() for name in CAMERA_ARRAYS),
                                     tuple(int(v) for v in stored['image_size'][i]),
                                     scene_type)
            self.cameras.append(cameras)
            self.boxes.append(self._fixed_boxes(cameras))
        self.log(f'feature cache {path}: {tuple(data["features"].shape)}')
        return data['features']

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
                boxes = self._fixed_boxes(cameras)
                self.cameras.append(cameras)
                self.boxes.append(boxes)
                threads = torch.get_num_threads()
                torch.set_num_threads(1)  # tiny resizes: thread hand-offs cost more than saved
                pending.extend(crop_and_resize(record.images[v], box, size).float()
                               for v, box in enumerate(boxes))
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
        features = torch.cat(per_set).reshape(len(self.base), views.pop(), *per_set[0].shape[1:])
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
        torch.save({'key': key, 'features': self.features, 'cameras': cameras}, temporary)
        temporary.replace(path)

    def __getitem__(self, key: SampleKey) -> dict:
        index, seed = self.base.split_key(key)
        rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
        cameras = self.cameras[index]
        views = self.base.sample_views(rng, len(cameras.R))
        sample = self.base.sample_geometry(cameras, views, self.boxes[index][views], index)
        sample['features'] = self.features[index][torch.from_numpy(views)].float()
        return sample
