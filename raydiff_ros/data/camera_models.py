"""Pinhole cameras of the synthetic generator and their OpenGL (pybullet) matrices.

Cameras are in the package convention: world-to-camera ``R``, ``t`` (``camera_T_world``,
``x_cam = R x_world + t``) with OpenCV axes (x right, y down, z forward) and pixel intrinsics
``K``. Pixel coordinates are continuous, the image spanning ``[0, W] x [0, H]`` (pixel (i, j)
has its centre at (j + 0.5, i + 0.5)).

pybullet takes OpenGL matrices, column-major, as flat lists of 16 numbers:

* view: ``V_gl = diag(1, -1, -1, 1) @ [[R, t], [0, 1]]`` (OpenGL camera axes: x right, y up,
  z backward; the flip is its own inverse, so ``camera_T_world = diag(1, -1, -1, 1) @ V_gl``,
  the conversion verified in ``/work/shared/notes/data-and-rendering.md``);
* projection from ``K`` (general principal point): rows
  ``[2 fx / W, 0, 1 - 2 cx / W, 0]``, ``[0, 2 fy / H, 2 cy / H - 1, 0]``,
  ``[0, 0, -(f + n) / (f - n), -2 f n / (f - n)]``, ``[0, 0, -1, 0]``; with ``cx = W / 2``,
  ``cy = H / 2`` and ``fy = (H / 2) / tan(fov / 2)`` it equals pybullet's
  ``computeProjectionMatrixFOV(fov, W / H, n, f)`` (``fov`` vertical).
"""

import numpy as np

from raydiff_ros.geometry.transforms import axis_angle_rotations

OPENGL_FROM_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])
"""Axis flip between OpenCV and OpenGL camera frames (its own inverse)."""

WORLD_UP = np.array([0.0, 0.0, 1.0])
"""World up axis of the generated scenes (the floor is the plane z = 0)."""

MIN_FORWARD_UP_SINE = 1e-6
"""Below this |forward x up|, a look-at rotation is undefined (looking straight up/down)."""


def look_at_rotation(
    center: np.ndarray, target: np.ndarray, roll_rad: float = 0.0, up: np.ndarray = WORLD_UP
) -> np.ndarray:
    """World-to-camera rotation (3, 3) of a camera at ``center`` looking at ``target``.

    Rows of ``R`` are the camera axes in world coordinates: x right, y down (world ``up``
    appears upward in the image), z forward; then the image is rolled by ``roll_rad``
    (counter-clockwise in the image for positive angles, about the optical axis).
    """
    forward = np.asarray(target, dtype=np.float64) - np.asarray(center, dtype=np.float64)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)
    if np.linalg.norm(right) < MIN_FORWARD_UP_SINE:
        raise ValueError('look-at direction is parallel to the up axis')
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    R = np.stack([right, down, forward])
    return axis_angle_rotations(np.array([0.0, 0.0, 1.0]), -roll_rad) @ R


def intrinsics_from_vertical_fov(
    vertical_fov_deg: float, width: int, height: int, principal_offset=(0.0, 0.0)
) -> np.ndarray:
    """Pixel K (3, 3): ``fx = fy = (H / 2) / tan(fov / 2)``, ``c = (W / 2, H / 2) + offset``."""
    if not 0 < vertical_fov_deg < 180:
        raise ValueError(
            f'vertical field of view must be in (0, 180) deg, got {vertical_fov_deg}')
    focal = (height / 2) / np.tan(np.radians(vertical_fov_deg) / 2)
    return np.array(
        [
            [focal, 0.0, width / 2 + principal_offset[0]],
            [0.0, focal, height / 2 + principal_offset[1]],
            [0.0, 0.0, 1.0],
        ]
    )


def opengl_view_matrix(R: np.ndarray, t: np.ndarray) -> list:
    """pybullet view matrix (16 floats, column-major) of world-to-camera ``R`` (3, 3), ``t``."""
    camera_T_world = np.eye(4)
    camera_T_world[:3, :3] = R
    camera_T_world[:3, 3] = t
    return (OPENGL_FROM_OPENCV @ camera_T_world).T.reshape(-1).tolist()


def camera_T_world_from_view_matrix(view_matrix) -> np.ndarray:
    """Inverse of :func:`opengl_view_matrix`: the (4, 4) OpenCV ``camera_T_world``."""
    return OPENGL_FROM_OPENCV @ np.asarray(view_matrix, dtype=np.float64).reshape(4, 4).T


def opengl_projection_matrix(
    K: np.ndarray, width: int, height: int, near: float, far: float
) -> list:
    """pybullet projection matrix (16 floats, column-major) for pixel intrinsics ``K`` (3, 3)."""
    if not 0 < near < far:
        raise ValueError(f'need 0 < near < far, got {near}, {far}')
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    projection = np.array(
        [
            [2 * fx / width, 0.0, 1 - 2 * cx / width, 0.0],
            [0.0, 2 * fy / height, 2 * cy / height - 1, 0.0],
            [0.0, 0.0, -(far + near) / (far - near), -2 * far * near / (far - near)],
            [0.0, 0.0, -1.0, 0.0],
        ]
    )
    return projection.T.reshape(-1).tolist()


def project_points(K: np.ndarray, R: np.ndarray, t: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Pixel coordinates (M, 2) of world points (M, 3) seen by camera (K, R, t)."""
    camera = np.asarray(points, dtype=np.float64) @ R.T + t
    pixels = camera @ K.T
    return pixels[:, :2] / pixels[:, 2:]
