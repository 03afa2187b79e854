"""Where a model comes from when none is configured: the shipped default model folders.

``models/default`` (ray diffusion), ``models/default_regression`` (ray regression),
``models/pose_diffusion`` and ``models/camera_ray_token`` of a source checkout, or
``share/raydiff_ros/models/<name>`` of a colcon install; ``$RAYDIFF_MODEL_DIR`` overrides the
default diffusion model.
"""

import os
from pathlib import Path
from typing import Optional

MODEL_DIR_ENV = 'RAYDIFF_MODEL_DIR'
DEFAULT_MODEL_NAME = 'default'
DEFAULT_REGRESSION_MODEL_NAME = 'default_regression'
POSE_DIFFUSION_MODEL_NAME = 'pose_diffusion'
CAMERA_RAY_TOKEN_MODEL_NAME = 'camera_ray_token'
PACKAGE_NAME = 'raydiff_ros'


class ModelNotFoundError(FileNotFoundError):
    """No model folder was given and no default model is installed."""


def _candidates(name: str) -> list[Path]:
    candidates = []
    if name == DEFAULT_MODEL_NAME and os.environ.get(MODEL_DIR_ENV):
        candidates.append(Path(os.environ[MODEL_DIR_ENV]))
    try:  # a colcon install: share/raydiff_ros/models/default
        from ament_index_python.packages import get_package_share_directory
        candidates.append(Path(get_package_share_directory(PACKAGE_NAME)) / 'models' / name)
    except (ImportError, LookupError, ValueError, OSError):  # no ament index here
        pass
    # a source checkout / editable install: <repo>/models/<name>
    candidates.append(Path(__file__).resolve().parents[2] / 'models' / name)
    return candidates


def resolve_model_dir(model_dir: Optional[Path], name: str = DEFAULT_MODEL_NAME) -> Path:
    """``model_dir`` if given, else the shipped model ``name`` (for the default diffusion model
    ``$RAYDIFF_MODEL_DIR`` first)."""
    if model_dir is not None:
        return Path(model_dir)
    for candidate in _candidates(name):
        if (candidate / 'config.yaml').is_file():
            return candidate
    searched = ', '.join(str(c) for c in _candidates(name))
    raise ModelNotFoundError(f'no model given and no default {name!r} model found (searched '
                             f'{searched}); pass a model folder (see raydiff-import-official '
                             'and raydiff-train)')
