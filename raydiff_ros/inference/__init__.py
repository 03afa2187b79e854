"""raydiff_ros.inference: the pose estimation engine (images in, cameras out). No ROS imports."""

from raydiff_ros.inference.engine import (
    EngineConfig,
    EstimationError,
    PoseEstimationResult,
    PoseEstimator,
)
from raydiff_ros.inference.preprocess import CropConfig, PreprocessedViews, preprocess_views

__all__ = [
    'CropConfig',
    'EngineConfig',
    'EstimationError',
    'PoseEstimationResult',
    'PoseEstimator',
    'PreprocessedViews',
    'preprocess_views',
]
