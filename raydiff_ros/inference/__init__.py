"""raydiff_ros.inference: the ray-model estimator (images in, cameras out). No ROS imports."""

from raydiff_ros.inference.engine import EngineConfig, RayDiffusionEngine
from raydiff_ros.inference.preprocess import CropConfig, PreprocessedViews, preprocess_views

__all__ = [
    'CropConfig',
    'EngineConfig',
    'PreprocessedViews',
    'RayDiffusionEngine',
    'preprocess_views',
]
