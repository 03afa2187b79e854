"""View sets drawn from a folder of synthetic shards (``raydiff-render`` output), one scene each.

A shard folder holds ``shard_*.npz`` files (format in ``raydiff_ros/data/README.md``) and an
``index.json`` listing them. Every view set in a shard is its own scene of V views (``scene_type``
``object`` or ``rig`` in its metadata) with pixel ``K`` and OpenCV world-to-camera ``R``, ``t``
(``x_cam = R x_world + t``).

Protocol (``ShardViewSetSource``):

* **Selection.** The view sets are listed in shard order (``index.json`` order, or sorted file
  names without it) and filtered by ``scene_type`` (``all``, ``object``, ``rig``). With
  ``sets_per_n = S``, S of them are used for every N: the first S (``set_choice='first'``, the
  default) or S drawn without replacement by ``numpy.random.default_rng([seed])``
  (``'random'``, kept in shard order); ``sets_per_n = None`` uses all of them.
* **Views.** The N views of a set are a random subset in random order, drawn by
  ``numpy.random.default_rng([seed, N, set_index])`` (``set_index``: the set's global index
  from its metadata), so they depend neither on the other sets nor on the other N.
* **Scene scale.** That of the view set's own V cameras (RayDiffusion's per-sequence scale).
* **Reading.** Only shard metadata is read when the source is opened. A set's arrays are read
  (``shards.read_view_set``) when the set is drawn, and images are decoded only when an
  estimator asks for them; the most recently read set is cached, so an image estimator reading
  N images costs one read.
"""

from dataclasses import dataclass
from functools import lru_cache
import json
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence, Union

import numpy as np

from raydiff_ros.data.shards import ShardError, ViewSetRecord, read_shard_metadata, read_view_set
from raydiff_ros.evaluation.datasets import DatasetError, MultiViewDataset
from raydiff_ros.evaluation.harness import HarnessError
from raydiff_ros.evaluation.view_set import SceneViewSet

PathLike = Union[str, Path]

SHARD_INDEX_FILE = 'index.json'
"""Written by ``raydiff-render`` beside the shards: ``{"shards": [{"file": ...}, ...], ...}``."""

SHARD_GLOB = 'shard_*.npz'
SOURCE_FORMAT = 'synthetic_shards'
SCENE_FORMAT = 'synthetic_shard_set'
SCENE_TYPE_ALL = 'all'
SCENE_TYPES = (SCENE_TYPE_ALL, 'object', 'rig')
"""Values of ``raydiff-eval --scene-type``."""

SET_CHOICES = ('first', 'random')
"""Values of ``raydiff-eval --set-choice``: which S view sets ``--sets-per-n S`` uses."""

READ_CACHE_SIZE = 1


def is_shard_folder(path: PathLike) -> bool:
    """Whether ``path`` is a folder holding ``index.json`` or ``shard_*.npz`` files."""
    path = Path(path)
    return path.is_dir() and (
        (path / SHARD_INDEX_FILE).is_file() or any(path.glob(SHARD_GLOB))
    )


@lru_cache(maxsize=READ_CACHE_SIZE)
def _cached_read(shard_path: Path, index_in_shard: int, modified_ns: int) -> ViewSetRecord:
    del modified_ns  # part of the cache key only: a rewritten shard is read again
    return read_view_set(shard_path, index_in_shard)


def _read_set(shard_path: Path, index_in_shard: int) -> ViewSetRecord:
    """View set ``index_in_shard`` of a shard, from the one-set cache when just read."""
    try:
        modified_ns = shard_path.stat().st_mtime_ns
    except OSError as error:
        raise DatasetError(f'shard {shard_path} cannot be read: {error}') from error
    return _cached_read(shard_path, index_in_shard, modified_ns)


@dataclass(frozen=True)
class ShardSetEntry:
    """One view set of a shard folder, known from the shard metadata only.

    Attributes:
        shard_path: the shard file.
        index_in_shard: 0-based index of the set within its shard.
        set_index: the set's global index (metadata ``set_index``; its position in the folder
            listing when absent).
        num_views: V, its number of views.
        scene_type: ``'object'``, ``'rig'`` (or ``''`` when the metadata has none).
    """

    shard_path: Path
    index_in_shard: int
    set_index: int
    num_views: int
    scene_type: str

    @property
    def name(self) -> str:
        return f'{self.shard_path.name}#{self.index_in_shard}'


@dataclass(frozen=True, eq=False)
class ShardScene(MultiViewDataset):
    """One shard view set as a ``MultiViewDataset`` whose images are read from the shard.

    ``image_paths`` are labels ``<folder>/<shard>#<j>/view_VV``, not files; ``load_image``
    reads the shard instead.
    """

    shard_path: Optional[Path] = None
    index_in_shard: int = 0
    scene_type: str = ''
    object_boxes: Optional[np.ndarray] = None
    """(M, 4) pixel boxes ``[x0, y0, x1, y1]`` of the object of an object-centric set (what
    the models crop to, as in training and in RayDiffusion's CO3D protocol); None for rigs."""

    def load_image(self, index: int) -> np.ndarray:
        """View ``index`` as (H, W, 3) uint8 RGB, read from the shard."""
        if not 0 <= index < len(self):
            raise IndexError(f'image index {index} out of range for {len(self)} images')
        return _read_set(self.shard_path, self.index_in_shard).images[index].copy()


def load_shard_scene(entry: ShardSetEntry) -> ShardScene:
    """The cameras of one view set (reads the set; its images stay in the read cache)."""
    record = _read_set(entry.shard_path, entry.index_in_shard)
    label_dir = entry.shard_path.parent / entry.name
    return ShardScene(
        name=entry.name,
        root=entry.shard_path.parent,
        source_format=SCENE_FORMAT,
        image_paths=tuple(label_dir / f'view_{i:02d}' for i in range(record.num_views)),
        K=record.K,
        R=record.R,
        t=record.t,
        image_sizes=np.tile(np.array(record.image_size, dtype=np.int64), (record.num_views, 1)),
        shard_path=entry.shard_path,
        index_in_shard=entry.index_in_shard,
        scene_type=record.scene_type,
        object_boxes=record.bboxes.copy() if record.scene_type == 'object' else None,
    )


def _shard_files(folder: Path) -> list[Path]:
    index_path = folder / SHARD_INDEX_FILE
    if not index_path.is_file():
        files = sorted(folder.glob(SHARD_GLOB))
    else:
        try:
            listed = json.loads(index_path.read_text())['shards']
            files = [folder / str(item['file']) for item in listed]
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as error:
            raise DatasetError(
                f'{index_path} is not a shard index (expected {{"shards": [{{"file": ...}}]}}): '
                f'{error}'
            ) from error
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise DatasetError(f'{index_path} lists missing shards: {", ".join(missing)}')
    if not files:
        raise DatasetError(f'{folder}: no shards ({SHARD_GLOB}) found')
    return files


def list_shard_sets(folder: PathLike) -> list[ShardSetEntry]:
    """Every view set of a shard folder, in shard order, from the shard metadata alone."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f'shard folder {folder} does not exist')
    entries = []
    for shard_path in _shard_files(folder):
        for j, info in enumerate(read_shard_metadata(shard_path)['sets']):
            entries.append(ShardSetEntry(
                shard_path=shard_path,
                index_in_shard=j,
                set_index=int(info.get('set_index', len(entries))),
                num_views=int(info['num_views']),
                scene_type=str(info.get('scene_type', '')),
            ))
    return entries


class ShardViewSetSource:
    """View sets of a shard folder, each its own scene (protocol in the module docstring).

    Args:
        folder: the shard folder.
        scene_type: ``'all'``, ``'object'`` or ``'rig'``.
        set_choice: ``'first'`` or ``'random'``: which S sets ``sets_per_n = S`` uses.
    """

    def __init__(
        self, folder: PathLike, scene_type: str = SCENE_TYPE_ALL, set_choice: str = 'first'
    ) -> None:
        if scene_type not in SCENE_TYPES:
            raise ValueError(f'scene_type must be one of {SCENE_TYPES}, got {scene_type!r}')
        if set_choice not in SET_CHOICES:
            raise ValueError(f'set_choice must be one of {SET_CHOICES}, got {set_choice!r}')
        self.folder = Path(folder)
        self.name = self.folder.name
        self.scene_type = scene_type
        self.set_choice = set_choice
        self.all_entries = tuple(list_shard_sets(self.folder))
        self.entries = tuple(e for e in self.all_entries
                             if scene_type == SCENE_TYPE_ALL or e.scene_type == scene_type)
        if not self.entries:
            raise DatasetError(
                f'{self.folder}: none of its {len(self.all_entries)} view sets has scene type '
                f'{scene_type!r}'
            )

    def selected_entries(self, sets_per_n: Optional[int], seed: int) -> list[ShardSetEntry]:
        """The view sets used for every N (see the module docstring)."""
        if sets_per_n is None:
            return list(self.entries)
        if sets_per_n > len(self.entries):
            raise HarnessError(
                f'{self.folder} has {len(self.entries)} view sets of scene type '
                f'{self.scene_type!r}; cannot use {sets_per_n} per N'
            )
        if self.set_choice == 'first':
            return list(self.entries[:sets_per_n])
        chosen = np.random.default_rng([seed]).choice(
            len(self.entries), size=sets_per_n, replace=False)
        return [self.entries[i] for i in sorted(int(i) for i in chosen)]

    def check_num_views(
        self, num_views: Sequence[int], sets_per_n: Optional[int], seed: int
    ) -> None:
        """Raise ``HarnessError`` naming the first selected set with fewer than max(N) views."""
        largest = max(num_views)
        for entry in self.selected_entries(sets_per_n, seed):
            if entry.num_views < largest:
                raise HarnessError(
                    f'view set {entry.name} of {self.folder} has {entry.num_views} views; '
                    f'cannot draw N = {largest}'
                )

    def num_sets(self, sets_per_n: Optional[int], seed: int) -> int:
        """The number of selected view sets (one drawn from each for every N)."""
        return len(self.selected_entries(sets_per_n, seed))

    def draw(
        self, num_views: int, sets_per_n: Optional[int], seed: int
    ) -> Iterator[SceneViewSet]:
        """One view set of N views per selected set, read when the iterator reaches it."""
        for entry in self.selected_entries(sets_per_n, seed):
            if entry.num_views < num_views:
                raise HarnessError(
                    f'view set {entry.name} has {entry.num_views} views; cannot draw '
                    f'N = {num_views}'
                )
            rng = np.random.default_rng([seed, num_views, entry.set_index])
            indices = tuple(int(i) for i in rng.choice(entry.num_views, size=num_views,
                                                       replace=False))
            try:
                scene = load_shard_scene(entry)
            except ShardError as error:
                raise DatasetError(str(error)) from error
            yield SceneViewSet(scene, indices)

    def describe(self) -> dict[str, Any]:
        counts = {t: sum(e.scene_type == t for e in self.all_entries) for t in SCENE_TYPES[1:]}
        return {
            'name': self.name,
            'root': str(self.folder),
            'source_format': SOURCE_FORMAT,
            'num_shards': len({e.shard_path for e in self.all_entries}),
            'num_view_sets': len(self.all_entries),
            'view_sets_per_scene_type': counts,
            'scene_type': self.scene_type,
            'num_selectable_view_sets': len(self.entries),
            'set_choice': self.set_choice,
        }

    def summary(self) -> str:
        return (f'{len(self.entries)} view sets of scene type {self.scene_type} '
                f'({SOURCE_FORMAT}, {len(self.all_entries)} in all)')
