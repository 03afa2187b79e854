"""Helpers of the pipeline tests: synthetic textured images, keyframes and rigid poses."""

from typing import Optional

import cv2
import numpy as np
import pytest

from raydiff_ros.geometry.transforms import make_transforms, rotation_exp
from raydiff_ros.pipeline.keyframes import Keyframe


def textured_image(seed: int, height: int = 120, width: int = 160, block: int = 8) -> np.ndarray:
    """A sharp (H, W, 3) uint8 RGB image of random coloured blocks (a distinct view per seed)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (height // block, width // block, 3), dtype=np.uint8)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST)


def make_keyframe(
    keyframe_id: int,
    stamp_ns: int,
    camera_index: int = 0,
    thumbnail: Optional[np.ndarray] = None,
    map_T_camera: Optional[np.ndarray] = None,
    size: int = 8,
) -> Keyframe:
    """A keyframe with a small image; the thumbnail defaults to a constant (all views alike)."""
    if thumbnail is None:
        thumbnail = np.zeros((4, 4), dtype=np.float32)
    return Keyframe(
        keyframe_id=keyframe_id,
        camera_index=camera_index,
        stamp_ns=stamp_ns,
        frame_id=f'cam{camera_index}_optical_frame',
        image=np.full((size, size, 3), keyframe_id % 256, dtype=np.uint8),
        thumbnail=thumbnail,
        K=None,
        sharpness=100.0,
        source_size=(size, size),
        map_T_camera=map_T_camera,
    )


def random_pose(rng: np.random.Generator, translation_scale: float = 1.0) -> np.ndarray:
    """A random rigid (4, 4) transform (rotation angle up to pi)."""
    axis = rng.standard_normal(3)
    angle = rng.uniform(0.0, np.pi)
    R = rotation_exp(axis / np.linalg.norm(axis) * angle)
    return make_transforms(R, rng.normal(scale=translation_scale, size=3))


def look_at_pose(center: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``world_T_camera`` (4, 4) of an OpenCV camera at ``center`` looking at ``target``.

    World z is up: the camera's x axis (right) is horizontal and its y axis points down.
    """
    forward = target - center
    forward = forward / np.linalg.norm(forward)
    right = np.cross(forward, np.array([0.0, 0.0, 1.0]))
    right = right / np.linalg.norm(right)
    down = np.cross(forward, right)
    return make_transforms(np.stack([right, down, forward], axis=1), center)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def textured():
    """``textured_image(seed, height=120, width=160, block=8)``."""
    return textured_image


@pytest.fixture
def keyframe():
    """``make_keyframe(keyframe_id, stamp_ns, camera_index=0, thumbnail=None, ...)``."""
    return make_keyframe


@pytest.fixture
def poses():
    """Pose helpers: ``poses.random_pose(rng, translation_scale)``, ``poses.look_at(c, t)``."""

    class _Poses:
        random_pose = staticmethod(random_pose)
        look_at = staticmethod(look_at_pose)

    return _Poses
