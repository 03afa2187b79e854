"""A synthetic 4-camera rig, noisy view sets of it, and its calibration (fixtures)."""

from dataclasses import dataclass
from typing import Optional

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from raydiff_ros.calibration.aggregation import RigCalibration, RigCalibrator
from raydiff_ros.geometry.transforms import invert_transforms, make_transforms

ROTATION_NOISE_DEG = 1.5
"""RMS rotation error of every camera of a view set (isotropic rotation vector)."""

DIRECTION_NOISE_DEG = 1.0
"""RMS angle by which every camera centre of a view set is rotated about the set origin."""

RIG_BASELINE_M = 0.3
"""Distance of cameras 0 and 1 in ``make_rig``."""

OUTLIER_ROTATION_DEG = 40.0
OUTLIER_TRANSLATION_FACTOR = 1.5


@dataclass(frozen=True)
class SyntheticViewSet:
    cameras: np.ndarray
    reference_T_cameras: np.ndarray
    bad_position: Optional[int]
    """Position in ``cameras`` of the grossly wrong camera, None for a clean set."""


def make_rig() -> np.ndarray:
    """(4, 4, 4) ``rig_T_camera`` of a 4-camera ring rig, camera 0 the identity; baseline
    0-1 is 0.3 m."""
    rotations = Rotation.from_euler(
        'yxz', [[0, 0, 0], [40, 3, 2], [-35, -4, 1], [180, 5, -3]], degrees=True
    ).as_matrix()
    translations = np.array(
        [[0.0, 0.0, 0.0], [0.3, 0.0, 0.0], [-0.25, 0.05, 0.1], [0.05, -0.02, -0.35]]
    )
    return make_transforms(rotations, translations)


def _random_rotations(rng: np.random.Generator, count: int, rms_deg: float) -> np.ndarray:
    rotvecs = rng.normal(scale=np.radians(rms_deg) / np.sqrt(3.0), size=(count, 3))
    return Rotation.from_rotvec(rotvecs).as_matrix()


def make_view_sets(
    rig_T_camera: np.ndarray, count: int, outliers: int, seed: int
) -> list[SyntheticViewSet]:
    """``count`` view sets of random camera subsets (2..C cameras), each in its own first
    camera's frame at a random scale, with noise; ``outliers`` of them get one grossly wrong
    camera (not the reference)."""
    rng = np.random.default_rng(seed)
    num_cameras = rig_T_camera.shape[0]
    corrupted = set(rng.choice(count, size=outliers, replace=False).tolist())
    view_sets = []
    for index in range(count):
        size = int(rng.integers(2, num_cameras + 1))
        cameras = rng.choice(num_cameras, size=size, replace=False)
        reference_T_cameras = invert_transforms(rig_T_camera[cameras[0]]) @ rig_T_camera[cameras]
        R = _random_rotations(rng, size, ROTATION_NOISE_DEG) @ reference_T_cameras[:, :3, :3]
        t = np.einsum(
            'nij,nj->ni',
            _random_rotations(rng, size, DIRECTION_NOISE_DEG),
            reference_T_cameras[:, :3, 3],
        )
        R[0], t[0] = np.eye(3), np.zeros(3)
        bad = None
        if index in corrupted:
            bad = int(rng.integers(1, size))
            R[bad] = _random_rotations(rng, 1, OUTLIER_ROTATION_DEG)[0] @ R[bad]
            t[bad] = t[bad] * OUTLIER_TRANSLATION_FACTOR + rng.normal(scale=0.2, size=3)
        scale = float(rng.uniform(0.3, 3.0))
        view_sets.append(
            SyntheticViewSet(cameras, make_transforms(R, scale * t), bad)
        )
    return view_sets


NUM_VIEW_SETS = 24
NUM_OUTLIER_SETS = 3
VIEW_SET_SEED = 3


@pytest.fixture(scope='session')
def synthetic_rig() -> np.ndarray:
    return make_rig()


@pytest.fixture(scope='session')
def synthetic_view_sets(synthetic_rig) -> list[SyntheticViewSet]:
    return make_view_sets(synthetic_rig, NUM_VIEW_SETS, NUM_OUTLIER_SETS, VIEW_SET_SEED)


@pytest.fixture(scope='session')
def rig_calibration(synthetic_view_sets) -> RigCalibration:
    """The synthetic rig calibrated with the known 0-1 baseline of 0.3 m."""
    calibrator = RigCalibrator(4)
    for view_set in synthetic_view_sets:
        calibrator.add(view_set.cameras, view_set.reference_T_cameras)
    calibrator.scale_from_baseline(0, 1, RIG_BASELINE_M)
    return calibrator.solve()
