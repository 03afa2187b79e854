"""Where the model comes from when none is configured: the shipped default model folder."""

import os
from pathlib import Path
from typing import Optional

MODEL_DIR_ENV = 'RAYDIFF_MODEL_DIR'
DEFAULT_MODEL_NAME = 'default'
PACKAGE_NAME = 'raydiff_ros'


class ModelNotFoundError(FileNotFoundError):
    """No model folder was given and no default model is installed."""


def _candidates() -> list[Path]:
    candidates = []
    if os.environ.get(MODEL_DIR_ENV):
        candidates.append(Path(os.environ[MODEL_DIR_ENV]))
    try:  # a colcon install: share/raydiff_ros/models/default
        from ament_index_python.packages import get_package_share_directory
        candidates.append(Path(get_package_share_directory(PACKAGE_NAME)) / 'models'
                          / DEFAULT_MODEL_NAME)
    except (ImportError, LookupError, ValueError, OSError):  # no ament index here
        pass
    # a source checkout / editable install: <repo>/models/default
    candidates.append(Path(__file__).resolve().parents[2] / 'models' / DEFAULT_MODEL_NAME)
    return candidates


def resolve_model_dir(model_dir: Optional[Path]) -> Path:
    """``model_dir`` if given, else ``$RAYDIFF_MODEL_DIR``, else the shipped default model."""
    if model_dir is not None:
        return Path(model_dir)
    for candidate in _candidates():
        if (candidate / 'config.yaml').is_file():
            return candidate
    searched = ', '.join(str(c) for c in _candidates())
    raise ModelNotFoundError(f'no model given and no default model found (searched {searched});'
                             f' pass a model folder (see raydiff-import-official)')
