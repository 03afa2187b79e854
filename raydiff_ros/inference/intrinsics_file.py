"""Read camera intrinsics for ``raydiff-estimate --intrinsics FILE`` (YAML or JSON).

Accepted layouts (3x3 matrices may be nested lists or 9 row-major numbers):

* one matrix for every image: ``K: [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``;
* one per image, in image order: ``cameras: [{K: ...}, {K: ...}, ...]``;
* a ROS ``camera_calibration`` / camera_info YAML: ``camera_matrix: {rows: 3, cols: 3,
  data: [...]}`` with ``image_width`` and ``image_height`` (checked against the images).
"""

from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import yaml


class IntrinsicsFileError(ValueError):
    """The intrinsics file is missing, unreadable, or does not fit the images."""


def _matrix(value, where: str) -> np.ndarray:
    try:
        matrix = np.asarray(value, dtype=np.float64).reshape(3, 3)
    except (TypeError, ValueError) as error:
        raise IntrinsicsFileError(f'{where}: expected a 3x3 matrix or 9 numbers') from error
    if not np.all(np.isfinite(matrix)) or matrix[0, 0] <= 0 or matrix[1, 1] <= 0:
        raise IntrinsicsFileError(f'{where}: focal lengths must be positive and finite')
    return matrix


def load_intrinsics(path: Path, image_sizes: Sequence[tuple[int, int]]) -> np.ndarray:
    """Return (N, 3, 3) pixel intrinsics for N images of sizes (W, H) from ``path``."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise IntrinsicsFileError(f'cannot read {path}: {error}') from error
    if not isinstance(data, dict):
        raise IntrinsicsFileError(f'{path}: expected a mapping at the top level')
    num = len(image_sizes)
    expected_size: Optional[tuple[int, int]] = None
    if 'cameras' in data:
        cameras = data['cameras']
        if not isinstance(cameras, list) or len(cameras) != num:
            raise IntrinsicsFileError(f'{path}: cameras must list {num} entries (one per image)')
        return np.stack([_matrix(c.get('K') if isinstance(c, dict) else None,
                                 f'{path}: cameras[{i}].K') for i, c in enumerate(cameras)])
    if 'K' in data:
        matrix = _matrix(data['K'], f'{path}: K')
    elif 'camera_matrix' in data:
        block = data['camera_matrix']
        matrix = _matrix(block.get('data') if isinstance(block, dict) else None,
                         f'{path}: camera_matrix.data')
        if 'image_width' in data and 'image_height' in data:
            expected_size = (int(data['image_width']), int(data['image_height']))
    else:
        raise IntrinsicsFileError(f'{path}: expected a K, cameras or camera_matrix entry')
    if expected_size is not None:
        for index, size in enumerate(image_sizes):
            if tuple(size) != expected_size:
                raise IntrinsicsFileError(
                    f'{path}: calibrated for {expected_size[0]}x{expected_size[1]} images, '
                    f'image {index} is {size[0]}x{size[1]}')
    return np.broadcast_to(matrix, (num, 3, 3)).copy()
