"""Shards of rendered view sets: one ``.npz`` file holding several view sets.

Layout (documented in ``raydiff_ros/data/README.md``): a zip archive of ``.npy`` members,

* ``metadata``: 0-d unicode array with a JSON object: ``format`` (``SHARD_FORMAT``),
  ``version`` (``SHARD_VERSION``), ``num_sets``, generator settings, and ``sets``: one object
  per view set (at least ``num_views`` and ``image_size`` = [W, H]);
* per view set ``j`` (``j = 0 .. num_sets - 1``), with V views of H x W pixels:
  ``set_{j:04d}/images`` (V, H, W, 3) uint8 RGB, ``set_{j:04d}/masks`` (V, H, W) uint8 object
  labels (0 = no object), ``set_{j:04d}/K`` (V, 3, 3) float64 pixel intrinsics,
  ``set_{j:04d}/R`` (V, 3, 3) and ``set_{j:04d}/t`` (V, 3) float64 world-to-camera (OpenCV
  axes, ``x_cam = R x_world + t``), ``set_{j:04d}/bboxes`` (V, 4) float64 ``[x0, y0, x1, y1]``
  pixel box (exclusive max) of the set's focus objects.

Files are written deterministically (fixed zip timestamps and member order, no pickle), so the
same content gives the same bytes; writes go to a temporary file that is renamed into place.
Each view set is a separate member group, so a reader decompresses only the set it needs.
"""

from dataclasses import dataclass, field
import io
import json
import os
from pathlib import Path
import tempfile
from typing import Any, Sequence, Union
import zipfile

import numpy as np

PathLike = Union[str, Path]

SHARD_FORMAT = 'raydiff_ros.synthetic_shard'
SHARD_VERSION = 1
METADATA_KEY = 'metadata'
SET_PREFIX = 'set_{:04d}/'
SET_FIELDS = ('images', 'masks', 'K', 'R', 't', 'bboxes')
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o644
ZIP_FILE_MODE = FILE_MODE << 16
ROTATION_TOLERANCE = 1e-6


class ShardError(ValueError):
    """A shard file is missing, malformed, or holds inconsistent arrays."""


@dataclass(frozen=True, eq=False)
class ViewSetRecord:
    """One rendered view set of V views (shapes in the module docstring).

    Attributes:
        images: (V, H, W, 3) uint8.
        masks: (V, H, W) uint8 object labels.
        K: (V, 3, 3) float64 pixel intrinsics.
        R: (V, 3, 3) float64 world-to-camera rotations (OpenCV axes).
        t: (V, 3) float64 world-to-camera translations.
        bboxes: (V, 4) float64 focus-object boxes ``[x0, y0, x1, y1]`` in pixels.
        metadata: JSON-serialisable description (scene type, seed, objects, ...).
    """

    images: np.ndarray
    masks: np.ndarray
    K: np.ndarray
    R: np.ndarray
    t: np.ndarray
    bboxes: np.ndarray
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate_view_set(self)

    @property
    def num_views(self) -> int:
        return int(self.images.shape[0])

    @property
    def image_size(self) -> tuple[int, int]:
        """``(W, H)`` in pixels."""
        return int(self.images.shape[2]), int(self.images.shape[1])

    @property
    def scene_type(self) -> str:
        return str(self.metadata.get('scene_type', ''))


def validate_view_set(record: ViewSetRecord, where: str = 'view set') -> None:
    """Raise :class:`ShardError` unless every array has the documented shape and dtype."""
    images = record.images
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ShardError(f'{where}: images must be (V, H, W, 3) uint8, got {images.shape} '
                         f'{images.dtype}')
    num, height, width = images.shape[:3]
    expected = {'masks': ((num, height, width), np.uint8), 'K': ((num, 3, 3), np.float64),
                'R': ((num, 3, 3), np.float64), 't': ((num, 3), np.float64),
                'bboxes': ((num, 4), np.float64)}
    for name, (shape, dtype) in expected.items():
        value = getattr(record, name)
        if value.shape != shape or value.dtype != dtype:
            raise ShardError(f'{where}: {name} must be {shape} {np.dtype(dtype)}, got '
                             f'{value.shape} {value.dtype}')
        if dtype == np.float64 and not np.all(np.isfinite(value)):
            raise ShardError(f'{where}: {name} has non-finite values')
    orthogonality = np.abs(record.R @ np.swapaxes(record.R, 1, 2) - np.eye(3)).max()
    if orthogonality > ROTATION_TOLERANCE or np.any(np.linalg.det(record.R) < 0):
        raise ShardError(f'{where}: R holds a matrix that is not a rotation')
    if not isinstance(record.metadata, dict):
        raise ShardError(f'{where}: metadata must be a dict')


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    if not array.flags.c_contiguous:
        array = np.ascontiguousarray(array)
    np.lib.format.write_array(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _write_member(archive: zipfile.ZipFile, name: str, array: np.ndarray) -> None:
    info = zipfile.ZipInfo(name + '.npy', date_time=ZIP_TIMESTAMP)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = ZIP_FILE_MODE
    archive.writestr(info, _npy_bytes(array))


def write_shard(path: PathLike, records: Sequence[ViewSetRecord],
                header: dict[str, Any]) -> Path:
    """Write view sets into one shard file (atomically; same input gives the same bytes).

    Args:
        path: destination ``.npz`` file.
        records: the view sets (at least one).
        header: JSON-serialisable shard-level metadata (generator settings, set indices);
            ``format``, ``version``, ``num_sets`` and ``sets`` (each record's metadata plus
            ``num_views`` and ``image_size``) are added.

    Returns:
        The path written.
    """
    if not records:
        raise ShardError('a shard needs at least one view set')
    path = Path(path)
    metadata = dict(header)
    metadata.update(format=SHARD_FORMAT, version=SHARD_VERSION, num_sets=len(records),
                    sets=[dict(record.metadata, num_views=record.num_views,
                              image_size=list(record.image_size)) for record in records])
    text = json.dumps(metadata, sort_keys=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix='.' + path.name, suffix='.tmp', dir=path.parent)
    os.close(handle)
    try:
        with zipfile.ZipFile(temporary, 'w') as archive:
            _write_member(archive, METADATA_KEY, np.array(text))
            for j, record in enumerate(records):
                validate_view_set(record, f'view set {j}')
                for name in SET_FIELDS:
                    _write_member(archive, SET_PREFIX.format(j) + name, getattr(record, name))
        os.chmod(temporary, FILE_MODE)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return path


def _open(path: Path):
    if not path.is_file():
        raise ShardError(f'shard {path} not found')
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise ShardError(f'shard {path} is not a readable .npz file: {error}') from error


def _metadata(archive, path: Path) -> dict:
    if METADATA_KEY not in archive.files:
        raise ShardError(f'shard {path} has no {METADATA_KEY!r} member')
    try:
        stored = archive[METADATA_KEY]
        if stored.shape != () or stored.dtype.kind != 'U':
            raise ValueError(f'expected a 0-d unicode array, got {stored.shape} {stored.dtype}')
        metadata = json.loads(stored.item())
    except (ValueError, zipfile.BadZipFile) as error:
        raise ShardError(f'shard {path}: metadata is not valid JSON: {error}') from error
    if metadata.get('format') != SHARD_FORMAT:
        raise ShardError(f'shard {path} has format {metadata.get("format")!r}, expected '
                         f'{SHARD_FORMAT!r}')
    if metadata.get('version') != SHARD_VERSION:
        raise ShardError(f'shard {path} has version {metadata.get("version")!r}, expected '
                         f'{SHARD_VERSION}')
    num_sets = metadata.get('num_sets')
    sets = metadata.get('sets')
    if not isinstance(num_sets, int) or num_sets < 1 or not isinstance(sets, list) or len(
            sets) != num_sets:
        raise ShardError(f'shard {path}: inconsistent num_sets / sets in its metadata')
    if not all(isinstance(info, dict) and isinstance(info.get('num_views'), int)
               for info in sets):
        raise ShardError(f'shard {path}: a view set lacks its num_views in the metadata')
    return metadata


def read_shard_metadata(path: PathLike) -> dict:
    """The shard's metadata (format, version, num_sets, per-set metadata, generator settings)."""
    path = Path(path)
    with _open(path) as archive:
        return _metadata(archive, path)


def read_view_set(path: PathLike, index: int) -> ViewSetRecord:
    """View set ``index`` (0-based within the shard) of a shard file."""
    path = Path(path)
    with _open(path) as archive:
        metadata = _metadata(archive, path)
        if not 0 <= index < metadata['num_sets']:
            raise ShardError(f'shard {path} has {metadata["num_sets"]} view sets; index '
                             f'{index} is out of range')
        prefix = SET_PREFIX.format(index)
        arrays = {}
        for name in SET_FIELDS:
            key = prefix + name
            if key not in archive.files:
                raise ShardError(f'shard {path} lacks member {key!r}')
            try:
                arrays[name] = archive[key]
            except (ValueError, OSError, zipfile.BadZipFile) as error:
                raise ShardError(f'shard {path}: member {key!r} is corrupt: {error}') from error
    try:
        return ViewSetRecord(metadata=metadata['sets'][index], **arrays)
    except ShardError as error:
        raise ShardError(f'shard {path}, view set {index}: {error}') from error


def read_shard(path: PathLike) -> list[ViewSetRecord]:
    """Every view set of a shard file."""
    count = read_shard_metadata(path)['num_sets']
    return [read_view_set(path, j) for j in range(count)]
