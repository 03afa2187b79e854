"""Two cameras 25 deg apart seeing a random point cloud: noisy correspondences with a share of
outliers, for the two-view geometry and view-graph tests."""

import numpy as np

from raydiff_ros.geometry.transforms import axis_angle_rotations

K = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])
SIZE = (640, 480)


def project(points: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Pixels (M, 2) of world points (M, 3) in the camera ``x_cam = R x + t``."""
    camera = points @ R.T + t
    pixels = camera @ K.T
    return pixels[:, :2] / pixels[:, 2:]


def scene(num_points: int = 300, outlier_share: float = 0.25, noise_px: float = 0.3,
          seed: int = 0) -> tuple:
    """(first (M, 2), second (M, 2), cam_1_R_cam_0, unit t, outlier mask (M,)): camera 0 is
    the world; an outlier's second point is uniform over the image."""
    rng = np.random.default_rng(seed)
    points = rng.uniform([-2, -1.5, 4], [2, 1.5, 8], size=(num_points, 3))
    R = axis_angle_rotations(np.array([0.2, 1.0, 0.1]), np.radians(25.0))
    centre = np.array([1.5, 0.1, 0.4])
    t = -R @ centre
    first = project(points, np.eye(3), np.zeros(3)) + rng.normal(0, noise_px, (num_points, 2))
    second = project(points, R, t) + rng.normal(0, noise_px, (num_points, 2))
    outliers = rng.random(num_points) < outlier_share
    second[outliers] = rng.uniform([0, 0], SIZE, size=(outliers.sum(), 2))
    return first, second, R, t / np.linalg.norm(t), outliers
