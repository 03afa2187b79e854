"""raydiff_ros.estimation: the estimator contract and the one registry of estimators.

Above geometry, below everything that estimates or consumes estimates: the node, the console
commands and the evaluation harness build estimators with :func:`create_estimator` and call
``estimate(ViewSetInput) -> EstimationResult``; the implementations (``inference``,
``features``, ``refinement``, the reference estimators here) import this package, never the
other way round. No ROS.
"""

from raydiff_ros.estimation.contract import (
    MIN_VIEWS,
    POSE_SOURCE_REFERENCE,
    POSE_SOURCE_UNSPECIFIED,
    EstimationError,
    EstimationResult,
    EstimatorError,
    GroundTruth,
    PoseEstimator,
    ViewSetInput,
    medoid_index,
    sample_spread,
)
from raydiff_ros.estimation.registry import (
    BUILTIN_ESTIMATORS,
    DEFAULT_ESTIMATOR,
    REFINEMENTS,
    EstimatorOptions,
    RefinementError,
    available_estimators,
    create_estimator,
    estimator_entry,
    parse_option,
    parse_options,
    register_estimator,
    typed_options,
    with_refinement,
)

__all__ = [
    'BUILTIN_ESTIMATORS',
    'DEFAULT_ESTIMATOR',
    'EstimationError',
    'EstimationResult',
    'EstimatorError',
    'EstimatorOptions',
    'GroundTruth',
    'MIN_VIEWS',
    'POSE_SOURCE_REFERENCE',
    'POSE_SOURCE_UNSPECIFIED',
    'PoseEstimator',
    'REFINEMENTS',
    'RefinementError',
    'ViewSetInput',
    'available_estimators',
    'create_estimator',
    'estimator_entry',
    'medoid_index',
    'parse_option',
    'parse_options',
    'register_estimator',
    'sample_spread',
    'typed_options',
    'with_refinement',
]
