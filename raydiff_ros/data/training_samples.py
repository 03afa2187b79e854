"""Training samples from rendered shards, prepared as the official RayDiffusion trainer does.

For one view set (``SyntheticViewSetDataset[key]``):

1. choose ``views_per_sample`` views (a random subset in random order, or the first ones);
2. normalise their cameras together (:mod:`raydiff_ros.data.normalization`: optical-axes
   intersection at the origin, camera 0 at identity and at unit distance);
3. per view, a square crop box: the focus-object box for object scenes, the whole image for rig
   scenes (``crop_mode``), jittered like the official loader (square bbox around its centre,
   side x U(1.1, 1.2), centre shifted by U(-0.07, 0.07) x side, both corners rounded);
4. crop (black outside the image), resize to ``image_size`` (antialiased bilinear) and scale to
   [-1, 1] (:func:`raydiff_ros.model.image_input.crop_and_resize`, as at inference);
5. crop parameters by the training formula, the NDC patch grid, and the target rays
   ``cameras_to_rays`` of the normalised cameras through the crop's patch centres.

The trainer keeps the first N in [2, views_per_sample] views of a batch (:func:`truncate_views`),
after normalisation, as the official trainer does.

Randomness: a key ``(index, seed)`` draws the sample from ``SeedSequence([seed, index])``; an
integer key uses ``SampleConfig.seed``. Samples are therefore reproducible and independent of
DataLoader workers.
"""

from dataclasses import dataclass
import json
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import torch
from torch.utils.data import Dataset

from raydiff_ros.data.generate import INDEX_FILE
from raydiff_ros.data.normalization import FIRST_CAMERA_FRAMES, normalize_cameras
from raydiff_ros.data.shards import ShardError, ViewSetRecord, read_shard_metadata, read_view_set
from raydiff_ros.geometry.camera import Cameras
from raydiff_ros.geometry.crop import DEMO_CROP_SCALE, crop_parameters, ndc_grid
from raydiff_ros.geometry.rays import cameras_to_rays, rays_to_spatial
from raydiff_ros.model.image_input import crop_and_resize

PathLike = Union[str, Path]

CROP_MODES = ('auto', 'bbox', 'full')
OFFICIAL_JITTER_SCALE = (1.1, 1.2)
OFFICIAL_JITTER_SHIFT = (-0.07, 0.07)
FULL_IMAGE_JITTER_SCALE = (0.95, 1.05)
"""Full-image crops (rig scenes): side x this range of the longer image side (our choice; the
inference engine's default full-image crop is 1.0)."""
FULL_IMAGE_JITTER_SHIFT = (-0.03, 0.03)
FULL_IMAGE_SCALE = 1.0
"""Un-jittered full-image crop: the longer image side (the inference engine's default)."""
SHARD_GLOB = 'shard_*.npz'
PER_VIEW_KEYS = ('images', 'features', 'rays', 'ndc', 'crop_params', 'R', 't', 'K',
                 'image_size', 'crop_boxes')
MIN_VIEWS = 2

SampleKey = Union[int, tuple]


@dataclass(frozen=True)
class SampleConfig:
    """How samples are cut from view sets.

    Attributes:
        image_size: network input side in pixels (the backbone's ``image_size``).
        num_patches: P, rays per crop side (the denoiser's ``num_patches``).
        views_per_sample: views loaded and normalised together (8 officially); sets with
            fewer views give all of theirs.
        crop_mode: 'bbox' (focus-object box), 'full' (whole image) or 'auto' (bbox for object
            scenes, full for rig scenes).
        augment: jitter crops (training); without it crops are centred, scale 1.15 (bbox) or
            1.0 (full), like the inference engine.
        shuffle_views: random subset and order of the set's views (else the first ones).
        first_camera_frame: 'pytorch3d' (official) or 'opencv'; see normalization.py.
        seed: seed of integer keys.
    """

    image_size: int = 224
    num_patches: int = 16
    views_per_sample: int = 8
    crop_mode: str = 'auto'
    augment: bool = True
    shuffle_views: bool = True
    first_camera_frame: str = 'pytorch3d'
    seed: int = 0

    def __post_init__(self) -> None:
        if self.image_size < 1 or self.num_patches < 1:
            raise ValueError('image_size and num_patches must be positive')
        if self.views_per_sample < MIN_VIEWS:
            raise ValueError(f'views_per_sample must be at least {MIN_VIEWS}')
        if self.crop_mode not in CROP_MODES:
            raise ValueError(f'crop_mode must be one of {CROP_MODES}, got {self.crop_mode!r}')
        if self.first_camera_frame not in FIRST_CAMERA_FRAMES:
            raise ValueError(f'first_camera_frame must be one of {FIRST_CAMERA_FRAMES}')


@dataclass(frozen=True)
class ViewSetEntry:
    """Where one view set lives: ``index`` within ``shard``."""

    shard: Path
    index: int
    num_views: int
    scene_type: str


def shard_files(source: PathLike) -> list[Path]:
    """Shard files of a source: a shard file, or a folder (its index.json or ``shard_*.npz``)."""
    path = Path(source)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ShardError(f'shard source {path} does not exist')
    index = path / INDEX_FILE
    if index.is_file():
        try:
            listed = [path / entry['file'] for entry in json.loads(index.read_text())['shards']]
        except (ValueError, KeyError, TypeError) as error:
            raise ShardError(f'{index} is malformed: {error}') from error
        files = [file for file in listed if file.is_file()]
        if len(files) != len(listed):
            missing = [str(file) for file in listed if not file.is_file()]
            raise ShardError(f'{index} lists missing shards: {missing[:5]}')
    else:
        files = sorted(path.glob(SHARD_GLOB))
    if not files:
        raise ShardError(f'no shards in {path}')
    return files


def index_view_sets(sources: Sequence[PathLike]) -> list[ViewSetEntry]:
    """All view sets of the given shard files or folders, in order."""
    entries = []
    for source in sources:
        for file in shard_files(source):
            metadata = read_shard_metadata(file)
            for j, info in enumerate(metadata['sets']):
                entries.append(ViewSetEntry(file, j, int(info['num_views']),
                                            str(info.get('scene_type', ''))))
    if not entries:
        raise ShardError(f'no view sets in {list(map(str, sources))}')
    return entries


def square_box(bbox: np.ndarray) -> np.ndarray:
    """Square box (4,) around the centre of ``bbox`` with side = its longer side (float)."""
    center = (bbox[:2] + bbox[2:]) / 2
    half = (bbox[2:] - bbox[:2]).max() / 2
    return np.concatenate([center - half, center + half])


def jittered_crop_box(bbox: np.ndarray, scale: float, shift: np.ndarray) -> np.ndarray:
    """The official training crop box: square ``bbox``, centre + ``shift`` x side, side x
    ``scale``, both corners rounded (half to even). Returns (4,) int64 ``[x0, y0, x1, y1]``."""
    square = square_box(np.asarray(bbox, dtype=np.float64))
    side = square[2] - square[0]
    center = (square[:2] + square[2:]) / 2 + np.asarray(shift, dtype=np.float64) * side
    extent = side / 2 * scale
    upper_left = center - extent
    return np.around(np.concatenate([upper_left, upper_left + 2 * extent])).astype(np.int64)


def truncate_views(batch: dict, num_views: int) -> dict:
    """Keep the first ``num_views`` views of every per-view tensor of a collated batch."""
    if num_views < MIN_VIEWS:
        raise ValueError(f'num_views must be at least {MIN_VIEWS}, got {num_views}')
    return {key: value[:, :num_views] if key in PER_VIEW_KEYS else value
            for key, value in batch.items()}


class SyntheticViewSetDataset(Dataset):
    """Training samples (dicts of tensors) from rendered view sets.

    A sample with V views, S = image_size, P = num_patches holds: ``images`` (V, 3, S, S)
    float32 in [-1, 1]; ``rays`` (V, 6, P, P) target rays ``[d, m]`` in the normalised frame;
    ``ndc`` (V, 2, P, P) patch-centre NDC coordinates; ``crop_params`` (V, 4); ``crop_boxes``
    (V, 4) pixel crop boxes; normalised cameras ``R`` (V, 3, 3), ``t`` (V, 3), ``K`` (V, 3, 3)
    (pixels of the full image) and ``image_size`` (V, 2) = (W, H); ``index`` (the entry index).

    Args:
        entries: view sets (:func:`index_view_sets`).
        config: :class:`SampleConfig`.
    """

    def __init__(self, entries: Sequence[ViewSetEntry], config: SampleConfig) -> None:
        if not entries:
            raise ValueError('the dataset has no view sets')
        self.entries = list(entries)
        self.config = config

    def __len__(self) -> int:
        return len(self.entries)

    def view_set(self, index: int) -> ViewSetRecord:
        """The raw view set behind entry ``index`` (original cameras and images)."""
        entry = self.entries[index]
        return read_view_set(entry.shard, entry.index)

    def _crop_mode(self, cameras: 'ViewSetCameras') -> str:
        if self.config.crop_mode != 'auto':
            return self.config.crop_mode
        return 'bbox' if cameras.scene_type == 'object' else 'full'

    def _crop_box(self, rng: np.random.Generator, cameras: 'ViewSetCameras', view: int,
                  mode: str) -> np.ndarray:
        width, height = cameras.image_size
        if mode == 'bbox':
            box = cameras.bboxes[view]
            scale_range, shift_range = OFFICIAL_JITTER_SCALE, OFFICIAL_JITTER_SHIFT
            fixed_scale = DEMO_CROP_SCALE
        else:
            box = np.array([0.0, 0.0, width, height])
            scale_range, shift_range = FULL_IMAGE_JITTER_SCALE, FULL_IMAGE_JITTER_SHIFT
            fixed_scale = FULL_IMAGE_SCALE
        if self.config.augment:
            scale = rng.uniform(*scale_range)
            shift = rng.uniform(*shift_range, size=2)
        else:
            scale, shift = fixed_scale, np.zeros(2)
        return jittered_crop_box(box, scale, shift)

    def sample_views(self, rng: np.random.Generator, num_views: int) -> np.ndarray:
        """The views of a sample: a random subset and order, or the first ones."""
        count = min(self.config.views_per_sample, num_views)
        if self.config.shuffle_views:
            return rng.permutation(num_views)[:count]
        return np.arange(count)

    def __getitem__(self, key: SampleKey) -> dict:
        index, seed = self.split_key(key)
        record = self.view_set(index)
        rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
        views = self.sample_views(rng, record.num_views)
        return self.sample_from_record(record, views, rng, index)

    def split_key(self, key: SampleKey) -> tuple[int, int]:
        """``(index, seed)`` of a key (an index alone uses the configured seed)."""
        if isinstance(key, tuple):
            return int(key[0]), int(key[1])
        return int(key), self.config.seed

    def crop_boxes(self, cameras: 'ViewSetCameras', views: np.ndarray,
                   rng: np.random.Generator) -> np.ndarray:
        """(len(views), 4) int64 pixel crop boxes of the given views."""
        mode = self._crop_mode(cameras)
        return np.stack([self._crop_box(rng, cameras, v, mode) for v in views])

    def sample_from_record(self, record: ViewSetRecord, views: np.ndarray,
                           rng: np.random.Generator, index: int = -1) -> dict:
        """The training sample of the given views of ``record`` (see the class docstring)."""
        cameras = ViewSetCameras.from_record(record)
        boxes = self.crop_boxes(cameras, views, rng)
        sample = self.sample_geometry(cameras, views, boxes, index)
        sample['images'] = torch.stack([
            crop_and_resize(record.images[v], box, self.config.image_size)
            for v, box in zip(views, boxes, strict=True)]).float()
        return sample

    def sample_geometry(self, cameras: 'ViewSetCameras', views: np.ndarray, boxes: np.ndarray,
                        index: int = -1) -> dict:
        """Everything of a sample except ``images``: rays, NDC grid, crops, cameras."""
        cfg = self.config
        R, t, _ = normalize_cameras(cameras.R[views], cameras.t[views], cfg.first_camera_frame)
        K = cameras.K[views]
        width, height = cameras.image_size
        size = torch.tensor([float(width), float(height)], dtype=torch.float64)
        crop_params = crop_parameters(torch.from_numpy(boxes).double(), size)
        normalized = Cameras(torch.from_numpy(R), torch.from_numpy(t), torch.from_numpy(K),
                             size)
        rays = rays_to_spatial(cameras_to_rays(normalized, crop_params, cfg.num_patches))
        ndc = ndc_grid(crop_params, cfg.num_patches).permute(0, 3, 1, 2)
        count = len(views)
        return {
            'rays': rays.float(),
            'ndc': ndc.float(),
            'crop_params': crop_params.float(),
            'crop_boxes': torch.from_numpy(boxes),
            'R': torch.from_numpy(R).float(),
            't': torch.from_numpy(t).float(),
            'K': torch.from_numpy(K).float(),
            'image_size': size.float().expand(count, 2).clone(),
            'index': index,
        }


@dataclass(frozen=True)
class ViewSetCameras:
    """The cameras of a view set without its pixels (enough to build sample geometry).

    K (V, 3, 3), R (V, 3, 3), t (V, 3) world-to-camera (OpenCV), bboxes (V, 4) pixel boxes,
    image_size (W, H), scene_type ``object`` / ``rig``.
    """

    K: np.ndarray
    R: np.ndarray
    t: np.ndarray
    bboxes: np.ndarray
    image_size: tuple[int, int]
    scene_type: str

    @classmethod
    def from_record(cls, record: ViewSetRecord) -> 'ViewSetCameras':
        return cls(record.K, record.R, record.t, record.bboxes, record.image_size,
                   record.scene_type)


def split_entries(entries: Sequence[ViewSetEntry], holdout: int,
                  ) -> tuple[list[ViewSetEntry], list[ViewSetEntry]]:
    """(train, held-out): the last ``holdout`` entries are held out."""
    if not 0 <= holdout < len(entries):
        raise ValueError(f'cannot hold out {holdout} of {len(entries)} view sets')
    cut = len(entries) - holdout
    return list(entries[:cut]), list(entries[cut:])


def entries_for(sources: Optional[Sequence[PathLike]]) -> list[ViewSetEntry]:
    """:func:`index_view_sets` of ``sources``, or [] when there are none."""
    return index_view_sets(sources) if sources else []
