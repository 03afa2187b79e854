"""Fixtures of the evaluation tests: synthetic cameras and datasets built in memory or tmp_path."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
from PIL import Image
import pytest

from raydiff_ros.evaluation.datasets import MultiViewDataset

SYNTHETIC_IMAGE_SIZE = (64, 48)
SYNTHETIC_FOCAL_PX = 60.0
SYNTHETIC_RING_RADIUS = 3.0


def look_at_cameras(centers: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV world-to-camera (R (N, 3, 3), t (N, 3)) of cameras at ``centers`` facing ``target``,
    with the world +z axis pointing up in the images (camera -y)."""
    forward = target - centers
    forward /= np.linalg.norm(forward, axis=-1, keepdims=True)
    right = np.cross(forward, np.array([0.0, 0.0, 1.0]))
    right /= np.linalg.norm(right, axis=-1, keepdims=True)
    down = np.cross(forward, right)
    R = np.stack([right, down, forward], axis=1)
    return R, -np.einsum('nij,nj->ni', R, centers)


def ring_cameras(num: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Cameras on a jittered ring around the origin, looking at it."""
    rng = np.random.default_rng(seed)
    azimuth = np.linspace(0.0, 2.0 * np.pi, num, endpoint=False) + rng.uniform(-0.1, 0.1, num)
    height = rng.uniform(0.5, 1.5, num)
    centers = np.stack(
        [SYNTHETIC_RING_RADIUS * np.cos(azimuth), SYNTHETIC_RING_RADIUS * np.sin(azimuth), height],
        axis=-1,
    )
    return look_at_cameras(centers, np.zeros(3))


def synthetic_K(num: int) -> np.ndarray:
    width, height = SYNTHETIC_IMAGE_SIZE
    K = np.array([[SYNTHETIC_FOCAL_PX, 0.0, width / 2], [0.0, SYNTHETIC_FOCAL_PX, height / 2],
                  [0.0, 0.0, 1.0]])
    return np.repeat(K[None], num, axis=0)


def in_memory_dataset(R: np.ndarray, t: np.ndarray, root: Path = Path('/nonexistent')):
    """A dataset whose image files do not exist (for estimators that need no pixels)."""
    num = R.shape[0]
    return MultiViewDataset(
        name='synthetic',
        root=root,
        source_format='raydiff_poses',
        image_paths=tuple(root / f'{i:04d}.png' for i in range(num)),
        K=synthetic_K(num),
        R=R,
        t=t,
        image_sizes=np.tile(np.array(SYNTHETIC_IMAGE_SIZE), (num, 1)),
    )


def write_images(folder: Path, num: int, mode: str = 'RGB', seed: int = 0) -> list[str]:
    """Write ``num`` small random PNG images into ``folder``; return their file names."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    width, height = SYNTHETIC_IMAGE_SIZE
    names = []
    for i in range(num):
        channels = 4 if mode == 'RGBA' else 3
        pixels = rng.integers(0, 256, size=(height, width, channels), dtype=np.uint8)
        name = f'{i:04d}.png'
        Image.fromarray(pixels).save(folder / name)
        names.append(name)
    return names


@pytest.fixture(scope='session')
def synth() -> SimpleNamespace:
    """The helpers above, for tests (conftest modules are not importable in importlib mode)."""
    return SimpleNamespace(
        look_at_cameras=look_at_cameras,
        ring_cameras=ring_cameras,
        synthetic_K=synthetic_K,
        in_memory_dataset=in_memory_dataset,
        write_images=write_images,
        image_size=SYNTHETIC_IMAGE_SIZE,
    )
