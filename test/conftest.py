"""Shared pytest fixtures.

``shared_dir`` points at the reference material beside the checkout (``../shared``), or at
``$RAYDIFF_SHARED_DIR`` when set; tests that need it skip with a clear reason where it is absent.
"""

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

# Keep DDS discovery on this machine, and away from other test runs on it.
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
os.environ.setdefault('ROS_DOMAIN_ID', str(1 + os.getpid() % 100))


def shared_root() -> Path:
    """Return the folder of shared reference material (may not exist)."""
    return Path(os.environ.get('RAYDIFF_SHARED_DIR', REPO_ROOT.parent / 'shared'))


@pytest.fixture(scope='session')
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope='session')
def shared_dir() -> Path:
    root = shared_root()
    if not root.is_dir():
        pytest.skip(f'shared reference folder {root} is absent (set RAYDIFF_SHARED_DIR)')
    return root
