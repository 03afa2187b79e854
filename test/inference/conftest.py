"""Fixtures of the inference tests."""

from inference_helpers import look_at_rig, rig_images, rig_intrinsics
import pytest

RIG_SIZE = 5


@pytest.fixture
def rig():
    """(images, R (N, 3, 3), t (N, 3), K (N, 3, 3)) of a synthetic look-at rig."""
    R, t = look_at_rig(RIG_SIZE, seed=3)
    return rig_images(RIG_SIZE, seed=4), R, t, rig_intrinsics(RIG_SIZE)
