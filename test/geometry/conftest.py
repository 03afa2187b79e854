"""Fixtures of the geometry tests: the official RayDiffusion equivalence fixture."""

from pathlib import Path

import numpy as np
import pytest
import torch

FIXTURE_FOLDER = Path('reference') / 'raydiffusion_equivalence'


class OfficialFixture:
    """Arrays of ``fixture.npz`` as float32/int tensors, plus the shared image size."""

    def __init__(self, arrays: np.lib.npyio.NpzFile) -> None:
        self._arrays = arrays

    def __getitem__(self, name: str) -> torch.Tensor:
        return torch.as_tensor(self._arrays[name])

    @property
    def image_size(self) -> torch.Tensor:
        """(2,) image size (W, H) of the fixture's two images (both 600 x 800)."""
        sizes = self['image_sizes_wh']
        assert bool((sizes == sizes[0]).all())
        return sizes[0].to(torch.float32)


@pytest.fixture(scope='session')
def official(shared_dir: Path) -> OfficialFixture:
    path = shared_dir / FIXTURE_FOLDER / 'fixture.npz'
    if not path.is_file():
        pytest.skip(f'official equivalence fixture {path} is absent')
    return OfficialFixture(np.load(path))
