"""Validated pinhole intrinsics from the plain values of a ``sensor_msgs/CameraInfo``.

Intrinsics are in pixels with the OpenCV/ROS pixel convention: pixel ``(u, v)`` has its centre
at integer coordinates and the image spans ``[-0.5, W - 0.5] x [-0.5, H - 0.5]``, so

    K = [[fx, skew, cx],
         [0,  fy,   cy],
         [0,  0,    1 ]].

``CameraInfo.k`` describes the raw (distorted) image; ``CameraInfo.p[:3, :3]`` the rectified
one. Pick the one matching the subscribed topic (``image_raw`` -> ``k``, ``image_rect`` ->
``p``) with ``CameraInfoConfig.intrinsics_source``.

When the image size differs from the CameraInfo size (a resized stream, or our own
downscaling), the intrinsics are rescaled (``PinholeIntrinsics.scaled_to``). A change of aspect
ratio beyond ``aspect_ratio_tolerance`` is refused: it means a crop or a wrong CameraInfo,
which a scale cannot fix.
"""

from dataclasses import dataclass, replace
import math
from typing import Optional, Sequence

import numpy as np

from raydiff_ros.parameter_fields import check_fields, parameter

K_SIZE = 9
P_SIZE = 12
INTRINSICS_SOURCES = ('k', 'p')


class CameraInfoError(ValueError):
    """CameraInfo values are missing, malformed, or inconsistent with the image."""


@dataclass(frozen=True)
class CameraInfoConfig:
    """How CameraInfo values become intrinsics (ROS parameters of the same names).

    Each field's meaning, range and default are in its ``parameter(...)`` declaration.
    """

    intrinsics_source: str = parameter(
        'k',
        'read CameraInfo.k (raw images) or p[:3,:3] (rectified images)',
        choices=INTRINSICS_SOURCES,
    )
    aspect_ratio_tolerance: float = parameter(
        0.01,
        'largest relative aspect-ratio difference between image and CameraInfo '
        'before refusing (a crop cannot be fixed by scaling)',
        minimum=0.0,
        maximum=1.0,
        exclusive_maximum=True,
    )

    def __post_init__(self) -> None:
        check_fields(self, CameraInfoError)


@dataclass(frozen=True)
class PinholeIntrinsics:
    """Pinhole intrinsics of images of ``width`` x ``height`` pixels.

    Attributes:
        fx, fy: focal lengths in pixels, > 0.
        cx, cy: principal point in pixels (pixel centres at integers).
        width, height: the image size these intrinsics describe, pixels.
        skew: ``K[0, 1]`` (0 for almost every camera).
        distortion_model: CameraInfo ``distortion_model`` ('' when none), carried along.
        distortion: CameraInfo ``d`` coefficients, carried along (not applied here).
    """

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    skew: float = 0.0
    distortion_model: str = ''
    distortion: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        for name in ('fx', 'fy'):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0.0:
                raise CameraInfoError(f'focal length {name} must be positive and finite, '
                                      f'got {value}')
        for name in ('cx', 'cy', 'skew'):
            if not math.isfinite(getattr(self, name)):
                raise CameraInfoError(f'{name} must be finite, got {getattr(self, name)}')
        for name in ('width', 'height'):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or value <= 0:
                raise CameraInfoError(f'image {name} must be a positive integer, got {value}')
        if not all(math.isfinite(c) for c in self.distortion):
            raise CameraInfoError('distortion coefficients must be finite')

    @property
    def K(self) -> np.ndarray:
        """(3, 3) float64 intrinsic matrix in pixels."""
        return np.array(
            [[self.fx, self.skew, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]]
        )

    @property
    def has_distortion(self) -> bool:
        """Whether any distortion coefficient is non-zero."""
        return any(c != 0.0 for c in self.distortion)

    def scaled_to(self, width: int, height: int) -> 'PinholeIntrinsics':
        """The same camera for an image resized to ``width`` x ``height`` pixels.

        With ``s_x = width / self.width`` (and ``s_y`` likewise) a resize maps pixel-edge
        coordinates ``u + 0.5`` to ``s_x (u + 0.5)``, so ``fx' = s_x fx``, ``skew' = s_x skew``,
        ``cx' = s_x (cx + 0.5) - 0.5`` (and ``fy``, ``cy`` with ``s_y``). This is what
        ``cv2.resize`` does to the pixel grid.
        """
        if isinstance(width, bool) or int(width) != width or width <= 0:
            raise CameraInfoError(f'target width must be a positive integer, got {width}')
        if isinstance(height, bool) or int(height) != height or height <= 0:
            raise CameraInfoError(f'target height must be a positive integer, got {height}')
        scale_x = width / self.width
        scale_y = height / self.height
        return replace(
            self,
            fx=self.fx * scale_x,
            fy=self.fy * scale_y,
            skew=self.skew * scale_x,
            cx=scale_x * (self.cx + 0.5) - 0.5,
            cy=scale_y * (self.cy + 0.5) - 0.5,
            width=int(width),
            height=int(height),
        )


def _as_finite_vector(values: Sequence[float], size: int, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if array.size != size:
        raise CameraInfoError(f'CameraInfo {name} must have {size} values, got {array.size}')
    if not np.all(np.isfinite(array)):
        raise CameraInfoError(f'CameraInfo {name} contains NaN or infinite values')
    return array


def intrinsics_from_camera_info(
    k: Sequence[float],
    width: int,
    height: int,
    p: Optional[Sequence[float]] = None,
    d: Optional[Sequence[float]] = None,
    distortion_model: str = '',
    config: CameraInfoConfig = CameraInfoConfig(),
) -> PinholeIntrinsics:
    """Validated intrinsics from CameraInfo values.

    Args:
        k: the 9 values of ``CameraInfo.k`` (row-major 3x3).
        width: ``CameraInfo.width``, pixels.
        height: ``CameraInfo.height``, pixels.
        p: the 12 values of ``CameraInfo.p`` (row-major 3x4); needed when
            ``config.intrinsics_source == 'p'``, checked when given.
        d: ``CameraInfo.d`` distortion coefficients (carried along).
        distortion_model: ``CameraInfo.distortion_model`` (carried along).
        config: which matrix to read.

    Returns:
        The intrinsics of ``width`` x ``height`` images.

    Raises:
        CameraInfoError: a matrix of the wrong size, non-finite values, an all-zero
            (uncalibrated) matrix, a zero / negative focal length, a bottom row other than
            (0, 0, 1), a non-zero ``K[1, 0]``, or a non-positive image size.
    """
    matrix = _as_finite_vector(k, K_SIZE, 'k').reshape(3, 3)
    if p is not None:
        projection = _as_finite_vector(p, P_SIZE, 'p').reshape(3, 4)
        if config.intrinsics_source == 'p':
            matrix = projection[:, :3]
    elif config.intrinsics_source == 'p':
        raise CameraInfoError('intrinsics_source is "p" but no projection matrix p was given')
    name = config.intrinsics_source
    if not np.any(matrix):
        raise CameraInfoError(f'CameraInfo {name} is all zero: the camera is not calibrated')
    if not np.allclose(matrix[2], (0.0, 0.0, 1.0)) or matrix[1, 0] != 0.0:
        raise CameraInfoError(
            f'CameraInfo {name} is not an upper-triangular pinhole matrix with last row '
            f'(0, 0, 1): {matrix.tolist()}'
        )
    distortion = () if d is None else tuple(float(c) for c in _as_finite_vector(d, len(d), 'd'))
    return PinholeIntrinsics(
        fx=float(matrix[0, 0]),
        fy=float(matrix[1, 1]),
        cx=float(matrix[0, 2]),
        cy=float(matrix[1, 2]),
        skew=float(matrix[0, 1]),
        width=width,
        height=height,
        distortion_model=str(distortion_model),
        distortion=distortion,
    )


def intrinsics_for_image(
    intrinsics: PinholeIntrinsics,
    width: int,
    height: int,
    config: CameraInfoConfig = CameraInfoConfig(),
) -> PinholeIntrinsics:
    """Intrinsics for an image of ``width`` x ``height``, rescaled from the CameraInfo size.

    Raises:
        CameraInfoError: the aspect ratios differ by more than ``aspect_ratio_tolerance``
            (relative), or the size is not positive.
    """
    if width == intrinsics.width and height == intrinsics.height:
        return intrinsics
    if width <= 0 or height <= 0:
        raise CameraInfoError(f'image size must be positive, got {width} x {height}')
    info_aspect = intrinsics.width / intrinsics.height
    image_aspect = width / height
    if abs(image_aspect / info_aspect - 1.0) > config.aspect_ratio_tolerance:
        raise CameraInfoError(
            f'image size {width} x {height} does not match CameraInfo size '
            f'{intrinsics.width} x {intrinsics.height}: aspect ratios {image_aspect:.4f} and '
            f'{info_aspect:.4f} differ (cropped stream or wrong camera_info topic?)'
        )
    return intrinsics.scaled_to(width, height)
