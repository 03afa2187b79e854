"""Synthetic cameras on a ring looking at a point cloud, and their pixel correspondences."""

import numpy as np

from raydiff_ros.features.matching import PairMatches
from raydiff_ros.geometry.transforms import axis_angle_rotations

FOCAL_PX = 500.0
IMAGE_SIZE = (640, 480)
RING_RADIUS = 4.0
RING_STEP_DEG = 12.0
CLOUD_HALF_SIZE = 1.0


def look_at_rotation(center: np.ndarray) -> np.ndarray:
    """World-to-camera rotation (3, 3) of a camera at ``center`` looking at the origin
    (OpenCV axes, world z up)."""
    forward = -center / np.linalg.norm(center)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    return np.stack([right, down, forward])


def ring_cameras(num: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """R (num, 3, 3), t (num, 3), K (num, 3, 3) of cameras on a ring, 12 deg apart."""
    angles = np.radians(RING_STEP_DEG * np.arange(num))
    centers = np.stack([RING_RADIUS * np.cos(angles), RING_RADIUS * np.sin(angles),
                        0.5 * np.ones(num)], axis=1)
    R = np.stack([look_at_rotation(c) for c in centers])
    t = -np.einsum('nij,nj->ni', R, centers)
    K = np.array([[FOCAL_PX, 0, IMAGE_SIZE[0] / 2], [0, FOCAL_PX, IMAGE_SIZE[1] / 2], [0, 0, 1]])
    return R, t, np.repeat(K[None], num, axis=0)


def project(R: np.ndarray, t: np.ndarray, K: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Pixels (M, 2) of world points (M, 3) in one camera."""
    camera = points @ R.T + t
    pixels = camera @ K.T
    return pixels[:, :2] / pixels[:, 2:]


def synthetic_matches(R, t, K, num_points: int, noise_px: float, outlier_fraction: float,
                      rng: np.random.Generator) -> list[PairMatches]:
    """Correspondences of every pair: noisy projections of a random cloud, some outliers
    replaced by uniformly random pixels."""
    points = rng.uniform(-CLOUD_HALF_SIZE, CLOUD_HALF_SIZE, size=(num_points, 3))
    pairs = []
    for i in range(len(R)):
        for j in range(i + 1, len(R)):
            pix_i = project(R[i], t[i], K[i], points) + rng.normal(0, noise_px, (num_points, 2))
            pix_j = project(R[j], t[j], K[j], points) + rng.normal(0, noise_px, (num_points, 2))
            outliers = rng.random(num_points) < outlier_fraction
            pix_j[outliers] = rng.uniform([0, 0], IMAGE_SIZE, size=(outliers.sum(), 2))
            pairs.append(PairMatches(i=i, j=j, points_i=pix_i, points_j=pix_j))
    return pairs


def perturbed(R: np.ndarray, t: np.ndarray, angle_deg: float, center_noise: float,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Cameras 1.. rotated by ``angle_deg`` about random axes and centres moved by Gaussian
    noise; camera 0 is kept (it fixes the gauge of the refinement)."""
    num = len(R)
    noise = axis_angle_rotations(rng.standard_normal((num, 3)), np.radians(np.full(num,
                                                                                   angle_deg)))
    noise[0] = np.eye(3)
    centers = -np.einsum('nji,nj->ni', R, t)
    moved = centers + rng.normal(0, center_noise, size=centers.shape)
    moved[0] = centers[0]
    R_new = noise @ R
    return R_new, -np.einsum('nij,nj->ni', R_new, moved)
