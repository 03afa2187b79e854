"""Multi-view datasets with known camera poses, loaded into one typed structure.

Every loader returns a ``MultiViewDataset``: image paths, intrinsics ``K`` (M, 3, 3) in pixels,
world-to-camera ``R`` (M, 3, 3) and ``t`` (M, 3) in the package convention (OpenCV/ROS optical
axes: x right, y down, z forward; ``x_cam = R @ x_world + t``), image sizes, and an image
loader that returns H x W x 3 uint8 RGB. Images are read lazily: loading a dataset only reads
image headers (to learn their sizes), never pixels.

Supported formats (``load_dataset`` picks one from a file or folder path):

``middlebury``
    A Middlebury multi-view stereo parameter file ``<name>_par.txt``: the first line is the
    number of images, then one line per image:
    ``imgname k11 k12 k13 k21 k22 k23 k31 k32 k33 r11 r12 r13 r21 r22 r23 r31 r32 r33 t1 t2 t3``.
    The projection is ``K [R | t]`` with OpenCV axes, so R and t are used as they are.
    Image files lie beside the parameter file.

``nerf``
    A NeRF / Blender ``transforms*.json``: ``camera_angle_x`` (horizontal field of view,
    radians; optional ``camera_angle_y``) or explicit ``fl_x``, ``fl_y``, ``cx``, ``cy``
    (top level or per frame), and ``frames``, each with ``file_path`` (relative to the JSON
    file; ``.png`` is appended when it has no suffix) and ``transform_matrix``: a 4 x 4
    camera-to-world matrix with OpenGL/Blender camera axes (x right, y up, z backward).
    We right-multiply it by ``diag(1, -1, -1, 1)`` to get OpenCV camera axes, then invert it.
    With a field of view, ``f = 0.5 W / tan(angle_x / 2)`` and the principal point is the
    image centre ``(W / 2, H / 2)``. RGBA images are composited onto ``background_rgb``.

``raydiff_poses`` (our own format)
    A folder with the images and a ``poses.json``::

        {
          "format": "raydiff_ros.poses.v1",
          "name": "optional dataset name",
          "cameras": [
            {"image": "images/0000.png",
             "K": [[fx, 0, cx], [0, fy, cy], [0, 0, 1]],
             "R": [[r11, r12, r13], [r21, r22, r23], [r31, r32, r33]],
             "t": [t1, t2, t3]},
            ...
          ]
        }

    ``image`` is relative to the folder of ``poses.json``; ``K`` is in pixels (origin at the
    top-left pixel corner as in OpenCV); ``R``, ``t`` are OpenCV world-to-camera
    (``x_cam = R x_world + t``). ``write_poses_json`` writes this file.

Rotations are checked to be orthonormal (tolerance ``ROTATION_TOLERANCE``) with det +1 and are
then replaced by the nearest rotation (SVD), which removes float32 rounding of stored files.
"""

from dataclasses import dataclass
from functools import cached_property
import json
import math
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np
from PIL import Image, UnidentifiedImageError

from raydiff_ros.geometry.metrics import sequence_scene_scale
from raydiff_ros.geometry.transforms import camera_centers, project_to_rotation

PathLike = Union[str, Path]

DEFAULT_BACKGROUND_RGB = (255, 255, 255)
"""Background colour for compositing transparent images (white, as NeRF-synthetic training)."""

ROTATION_TOLERANCE = 1e-4
"""Largest accepted |R R^T - I| entry and |det R - 1| of a stored rotation."""

POSES_FORMAT_TAG = 'raydiff_ros.poses.v1'
"""Value of the ``format`` key of our own ``poses.json``."""

POSES_FILE_NAME = 'poses.json'
NERF_FILE_NAME = 'transforms.json'
MIDDLEBURY_SUFFIX = '_par.txt'
MIDDLEBURY_FIELDS = 1 + 9 + 9 + 3
NERF_DEFAULT_SUFFIX = '.png'

OPENGL_TO_OPENCV_CAMERA = np.diag([1.0, -1.0, -1.0, 1.0])
"""Right-multiplying a camera-to-world matrix with OpenGL camera axes by this gives OpenCV axes."""

MAX_ALPHA = 255


class DatasetError(ValueError):
    """A dataset file or image is missing, unreadable or inconsistent."""


# ---------------------------------------------------------------------------------------------
# The dataset structure and the image loader


def load_rgb_image(
    path: PathLike, background_rgb: Sequence[int] = DEFAULT_BACKGROUND_RGB
) -> np.ndarray:
    """Read an image as H x W x 3 uint8 RGB; transparency is composited onto ``background_rgb``.

    Args:
        path: image file (any format Pillow reads).
        background_rgb: (3,) background colour, 0..255, for images with an alpha channel.

    Returns:
        (H, W, 3) uint8 array.

    Raises:
        DatasetError: the file is missing or cannot be decoded.
    """
    path = Path(path)
    background = _check_background(background_rgb)
    try:
        with Image.open(path) as image:
            image.load()
            has_alpha = image.mode in ('RGBA', 'LA', 'PA') or (
                image.mode == 'P' and 'transparency' in image.info
            )
            if not has_alpha:
                return np.asarray(image.convert('RGB'), dtype=np.uint8).copy()
            rgba = np.asarray(image.convert('RGBA'), dtype=np.uint32)
    except FileNotFoundError as error:
        raise DatasetError(f'image file {path} does not exist') from error
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise DatasetError(f'cannot decode image {path}: {error}') from error
    alpha = rgba[..., 3:4]
    blended = rgba[..., :3] * alpha + np.asarray(background, np.uint32) * (MAX_ALPHA - alpha)
    return ((blended + MAX_ALPHA // 2) // MAX_ALPHA).astype(np.uint8)


def read_image_size(path: PathLike) -> tuple[int, int]:
    """(width, height) of an image from its header, without decoding the pixels."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            return int(image.size[0]), int(image.size[1])
    except FileNotFoundError as error:
        raise DatasetError(f'image file {path} does not exist') from error
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise DatasetError(f'cannot read image {path}: {error}') from error


def _check_background(background_rgb: Sequence[int]) -> tuple[int, int, int]:
    values = tuple(int(v) for v in background_rgb)
    if len(values) != 3 or any(v < 0 or v > MAX_ALPHA for v in values):
        raise DatasetError(f'background_rgb must be three integers in 0..255, got {values}')
    return values  # type: ignore[return-value]


@dataclass(frozen=True, eq=False)
class MultiViewDataset:
    """Images of one scene with ground-truth cameras in the package convention.

    Attributes:
        name: dataset name (folder name by default).
        root: folder the dataset was loaded from.
        source_format: ``'middlebury'``, ``'nerf'`` or ``'raydiff_poses'``.
        image_paths: M image files.
        K: (M, 3, 3) intrinsics in pixels.
        R: (M, 3, 3) world-to-camera rotations (``cam_T_world``), OpenCV axes.
        t: (M, 3) world-to-camera translations.
        image_sizes: (M, 2) int (width, height) in pixels.
        background_rgb: colour that transparent pixels are composited onto.
    """

    name: str
    root: Path
    source_format: str
    image_paths: tuple[Path, ...]
    K: np.ndarray
    R: np.ndarray
    t: np.ndarray
    image_sizes: np.ndarray
    background_rgb: tuple[int, int, int] = DEFAULT_BACKGROUND_RGB

    def __post_init__(self) -> None:
        num = len(self.image_paths)
        if num == 0:
            raise DatasetError(f'dataset {self.name} has no images')
        expected = {'K': (num, 3, 3), 'R': (num, 3, 3), 't': (num, 3), 'image_sizes': (num, 2)}
        for key, shape in expected.items():
            value = np.array(getattr(self, key))
            if value.shape != shape:
                raise DatasetError(f'{key} must have shape {shape}, got {value.shape}')
            value.flags.writeable = False
            object.__setattr__(self, key, value)
        object.__setattr__(self, 'background_rgb', _check_background(self.background_rgb))

    def __len__(self) -> int:
        return len(self.image_paths)

    @property
    def camera_centers(self) -> np.ndarray:
        """(M, 3) camera centres in world coordinates, ``C = -R^T t``."""
        return camera_centers(self.R, self.t)

    @cached_property
    def scene_scale(self) -> float:
        """Largest distance of a camera centre from the centroid of all M centres.

        Raises ``MetricInputError`` when all centres coincide.
        """
        return sequence_scene_scale(self.camera_centers)

    def load_image(self, index: int) -> np.ndarray:
        """Image ``index`` as (H, W, 3) uint8 RGB (alpha composited onto the background)."""
        if not 0 <= index < len(self):
            raise IndexError(f'image index {index} out of range for {len(self)} images')
        image = load_rgb_image(self.image_paths[index], self.background_rgb)
        width, height = (int(v) for v in self.image_sizes[index])
        if image.shape[:2] != (height, width):
            raise DatasetError(
                f'{self.image_paths[index]} is {image.shape[1]}x{image.shape[0]}, '
                f'expected {width}x{height}'
            )
        return image


# ---------------------------------------------------------------------------------------------
# Validation helpers


def _nearest_rotation(matrix: np.ndarray, where: str) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.shape != (3, 3) or not np.all(np.isfinite(matrix)):
        raise DatasetError(f'{where}: rotation must be a finite 3x3 matrix')
    orthogonality = np.abs(matrix @ matrix.T - np.eye(3)).max()
    determinant = np.linalg.det(matrix)
    if orthogonality > ROTATION_TOLERANCE or abs(determinant - 1.0) > ROTATION_TOLERANCE:
        raise DatasetError(
            f'{where}: not a rotation (|R R^T - I| = {orthogonality:.2e}, det = {determinant:.6f})'
        )
    return project_to_rotation(matrix)


def _check_intrinsics(K: np.ndarray, where: str) -> np.ndarray:
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (3, 3) or not np.all(np.isfinite(K)):
        raise DatasetError(f'{where}: K must be a finite 3x3 matrix')
    if not np.allclose(K[2], [0.0, 0.0, 1.0]) or K[1, 0] != 0.0:
        raise DatasetError(f'{where}: K must be upper triangular with last row (0, 0, 1)')
    if K[0, 0] <= 0.0 or K[1, 1] <= 0.0:
        raise DatasetError(f'{where}: focal lengths must be positive, got {K[0, 0]}, {K[1, 1]}')
    return K


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as error:
        raise DatasetError(f'{path} does not exist') from error
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DatasetError(f'{path} is not valid JSON: {error}') from error


def _as_float_array(value: Any, shape: tuple[int, ...], where: str) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise DatasetError(f'{where}: expected numbers of shape {shape}') from error
    if array.shape != shape or not np.all(np.isfinite(array)):
        raise DatasetError(f'{where}: expected finite numbers of shape {shape}, got {array.shape}')
    return array


def _build(
    name: str,
    root: Path,
    source_format: str,
    image_paths: Sequence[Path],
    K: Sequence[np.ndarray],
    R: Sequence[np.ndarray],
    t: Sequence[np.ndarray],
    sizes: Sequence[tuple[int, int]],
    background_rgb: Sequence[int],
) -> MultiViewDataset:
    if not image_paths:
        raise DatasetError(f'{root}: the dataset lists no images')
    return MultiViewDataset(
        name=name,
        root=root,
        source_format=source_format,
        image_paths=tuple(image_paths),
        K=np.stack(K),
        R=np.stack(R),
        t=np.stack(t),
        image_sizes=np.asarray(sizes, dtype=np.int64),
        background_rgb=_check_background(background_rgb),
    )


# ---------------------------------------------------------------------------------------------
# Loaders


def load_middlebury(
    par_path: PathLike, background_rgb: Sequence[int] = DEFAULT_BACKGROUND_RGB
) -> MultiViewDataset:
    """Load a Middlebury ``*_par.txt`` parameter file (images beside it). See module docstring."""
    par_path = Path(par_path)
    try:
        lines = [line.split() for line in par_path.read_text().splitlines() if line.strip()]
    except FileNotFoundError as error:
        raise DatasetError(f'{par_path} does not exist') from error
    except UnicodeDecodeError as error:
        raise DatasetError(f'{par_path} is not a text file') from error
    if not lines or len(lines[0]) != 1 or not lines[0][0].isdigit():
        raise DatasetError(f'{par_path}: the first line must be the number of images')
    count = int(lines[0][0])
    rows = lines[1:]
    if len(rows) != count:
        raise DatasetError(f'{par_path}: header says {count} images but {len(rows)} lines follow')
    paths, Ks, Rs, ts, sizes = [], [], [], [], []
    for line_number, fields in enumerate(rows, start=2):
        where = f'{par_path}:{line_number}'
        if len(fields) != MIDDLEBURY_FIELDS:
            raise DatasetError(
                f'{where}: expected {MIDDLEBURY_FIELDS} fields (name, K, R, t), got {len(fields)}'
            )
        try:
            values = np.array([float(v) for v in fields[1:]], dtype=np.float64)
        except ValueError as error:
            raise DatasetError(f'{where}: {error}') from error
        image_path = par_path.parent / fields[0]
        paths.append(image_path)
        Ks.append(_check_intrinsics(values[:9].reshape(3, 3), where))
        Rs.append(_nearest_rotation(values[9:18].reshape(3, 3), where))
        ts.append(_as_float_array(values[18:21], (3,), where))
        sizes.append(read_image_size(image_path))
    root = par_path.parent
    return _build(root.name, root, 'middlebury', paths, Ks, Rs, ts, sizes, background_rgb)


def _nerf_image_path(root: Path, file_path: Any, where: str) -> Path:
    if not isinstance(file_path, str) or not file_path:
        raise DatasetError(f'{where}: file_path must be a non-empty string')
    path = root / file_path
    if not path.suffix and not path.exists():
        path = path.with_name(path.name + NERF_DEFAULT_SUFFIX)
    return path


def _nerf_intrinsics(
    meta: dict, frame: dict, width: int, height: int, where: str
) -> np.ndarray:
    def lookup(key: str) -> Optional[float]:
        value = frame.get(key, meta.get(key))
        return None if value is None else float(value)

    fx, fy, cx, cy = (lookup(key) for key in ('fl_x', 'fl_y', 'cx', 'cy'))
    if fx is None:
        angle_x = lookup('camera_angle_x')
        if angle_x is None or not 0.0 < angle_x < math.pi:
            raise DatasetError(f'{where}: needs camera_angle_x in (0, pi) or fl_x')
        fx = 0.5 * width / math.tan(0.5 * angle_x)
    if fy is None:
        angle_y = lookup('camera_angle_y')
        fy = fx if angle_y is None else 0.5 * height / math.tan(0.5 * angle_y)
    cx = 0.5 * width if cx is None else cx
    cy = 0.5 * height if cy is None else cy
    K = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    return _check_intrinsics(K, where)


def load_nerf_transforms(
    json_path: PathLike, background_rgb: Sequence[int] = DEFAULT_BACKGROUND_RGB
) -> MultiViewDataset:
    """Load a NeRF/Blender ``transforms*.json`` (camera-to-world, OpenGL axes). See module doc."""
    json_path = Path(json_path)
    meta = _read_json(json_path)
    frames = meta.get('frames') if isinstance(meta, dict) else None
    if not isinstance(frames, list) or not frames:
        raise DatasetError(f'{json_path}: needs a non-empty "frames" list')
    paths, Ks, Rs, ts, sizes = [], [], [], [], []
    for index, frame in enumerate(frames):
        where = f'{json_path} frame {index}'
        if not isinstance(frame, dict):
            raise DatasetError(f'{where}: a frame must be an object')
        image_path = _nerf_image_path(json_path.parent, frame.get('file_path'), where)
        width, height = read_image_size(image_path)
        c2w_gl = _as_float_array(frame.get('transform_matrix'), (4, 4), f'{where} transform')
        if not np.allclose(c2w_gl[3], [0.0, 0.0, 0.0, 1.0]):
            raise DatasetError(f'{where}: transform_matrix last row must be (0, 0, 0, 1)')
        world_T_cam = c2w_gl @ OPENGL_TO_OPENCV_CAMERA
        cam_R_world = _nearest_rotation(world_T_cam[:3, :3], where).T
        paths.append(image_path)
        Ks.append(_nerf_intrinsics(meta, frame, width, height, where))
        Rs.append(cam_R_world)
        ts.append(-cam_R_world @ world_T_cam[:3, 3])
        sizes.append((width, height))
    return _build(
        json_path.parent.name, json_path.parent, 'nerf', paths, Ks, Rs, ts, sizes, background_rgb
    )


def load_poses_json(
    json_path: PathLike, background_rgb: Sequence[int] = DEFAULT_BACKGROUND_RGB
) -> MultiViewDataset:
    """Load our own ``poses.json`` (OpenCV world-to-camera K, R, t). See the module docstring."""
    json_path = Path(json_path)
    meta = _read_json(json_path)
    if not isinstance(meta, dict) or meta.get('format') != POSES_FORMAT_TAG:
        raise DatasetError(f'{json_path}: "format" must be "{POSES_FORMAT_TAG}"')
    cameras = meta.get('cameras')
    if not isinstance(cameras, list) or not cameras:
        raise DatasetError(f'{json_path}: needs a non-empty "cameras" list')
    paths, Ks, Rs, ts, sizes = [], [], [], [], []
    for index, camera in enumerate(cameras):
        where = f'{json_path} camera {index}'
        if not isinstance(camera, dict):
            raise DatasetError(f'{where}: a camera must be an object')
        missing = [key for key in ('image', 'K', 'R', 't') if key not in camera]
        if missing:
            raise DatasetError(f'{where}: missing keys {missing}')
        if not isinstance(camera['image'], str) or not camera['image']:
            raise DatasetError(f'{where}: "image" must be a non-empty string')
        image_path = json_path.parent / camera['image']
        paths.append(image_path)
        Ks.append(_check_intrinsics(_as_float_array(camera['K'], (3, 3), f'{where} K'), where))
        Rs.append(_nearest_rotation(_as_float_array(camera['R'], (3, 3), f'{where} R'), where))
        ts.append(_as_float_array(camera['t'], (3,), f'{where} t'))
        sizes.append(read_image_size(image_path))
    name = meta.get('name') or json_path.parent.name
    return _build(
        str(name), json_path.parent, 'raydiff_poses', paths, Ks, Rs, ts, sizes, background_rgb
    )


def write_poses_json(
    json_path: PathLike,
    image_names: Sequence[str],
    K: np.ndarray,
    R: np.ndarray,
    t: np.ndarray,
    name: Optional[str] = None,
) -> Path:
    """Write our own ``poses.json`` format.

    Args:
        json_path: file to write (images are referenced relative to its folder).
        image_names: M image paths relative to the folder of ``json_path``.
        K: (M, 3, 3) intrinsics in pixels.
        R: (M, 3, 3) OpenCV world-to-camera rotations.
        t: (M, 3) OpenCV world-to-camera translations.
        name: optional dataset name.

    Returns:
        The path written.
    """
    json_path = Path(json_path)
    K, R, t = (np.asarray(a, dtype=np.float64) for a in (K, R, t))
    num = len(image_names)
    if K.shape != (num, 3, 3) or R.shape != (num, 3, 3) or t.shape != (num, 3):
        raise DatasetError(
            f'expected K, R (M, 3, 3) and t (M, 3) for M = {num} images, '
            f'got {K.shape}, {R.shape}, {t.shape}'
        )
    content: dict[str, Any] = {'format': POSES_FORMAT_TAG}
    if name:
        content['name'] = name
    content['cameras'] = [
        {'image': str(image), 'K': K[i].tolist(), 'R': R[i].tolist(), 't': t[i].tolist()}
        for i, image in enumerate(image_names)
    ]
    json_path.write_text(json.dumps(content, indent=1) + '\n')
    return json_path


# ---------------------------------------------------------------------------------------------
# Format detection


def detect_format(path: PathLike) -> tuple[str, Path]:
    """Find the dataset format and description file of a file or folder path.

    Returns:
        ``(format, description_file)`` with format one of ``'raydiff_poses'``, ``'nerf'``,
        ``'middlebury'``.

    Raises:
        DatasetError: the path does not exist or holds no (or more than one) recognised file.
    """
    path = Path(path)
    if not path.exists():
        raise DatasetError(f'dataset path {path} does not exist')
    if path.is_file():
        if path.name == POSES_FILE_NAME:
            return 'raydiff_poses', path
        if path.name.startswith('transforms') and path.suffix == '.json':
            return 'nerf', path
        if path.name.endswith(MIDDLEBURY_SUFFIX):
            return 'middlebury', path
        raise DatasetError(
            f'{path}: unknown dataset file (expected {POSES_FILE_NAME}, transforms*.json or '
            f'*{MIDDLEBURY_SUFFIX})'
        )
    if (path / POSES_FILE_NAME).is_file():
        return 'raydiff_poses', path / POSES_FILE_NAME
    if (path / NERF_FILE_NAME).is_file():
        return 'nerf', path / NERF_FILE_NAME
    par_files = sorted(path.glob(f'*{MIDDLEBURY_SUFFIX}'))
    if len(par_files) == 1:
        return 'middlebury', par_files[0]
    if len(par_files) > 1:
        names = ', '.join(p.name for p in par_files)
        raise DatasetError(f'{path}: several parameter files ({names}); pass one of them')
    raise DatasetError(
        f'{path}: no dataset found (expected {POSES_FILE_NAME}, {NERF_FILE_NAME}, '
        f'*{MIDDLEBURY_SUFFIX}, or synthetic shards: index.json, shard_*.npz)'
    )


_LOADERS = {
    'raydiff_poses': load_poses_json,
    'nerf': load_nerf_transforms,
    'middlebury': load_middlebury,
}


def load_dataset(
    path: PathLike, background_rgb: Sequence[int] = DEFAULT_BACKGROUND_RGB
) -> MultiViewDataset:
    """Load a dataset from a folder or description file, detecting its format.

    Args:
        path: a dataset folder, or its ``poses.json`` / ``transforms*.json`` / ``*_par.txt``.
        background_rgb: colour transparent pixels are composited onto.

    Returns:
        The dataset (images are not read until ``load_image``).
    """
    source_format, description = detect_format(path)
    return _LOADERS[source_format](description, background_rgb)
