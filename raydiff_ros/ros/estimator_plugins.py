"""Build the node's estimator from its parameters, through the one estimator registry.

``estimator`` is a name of :func:`raydiff_ros.estimation.available_estimators` (``ray_diffusion``,
``ray_regression``, ``classical_sift``, ...) or ``python:<module>:<factory>``; model_dir,
device, dtype, num_samples, seed, refinement and estimator_options (comma-separated
``KEY=VALUE``, the CLIs' ``--option``) become its :class:`EstimatorOptions`. The
reference estimators that read the ground truth (``ground_truth``, ``noisy_oracle``) are
refused: the node has no ground truth.
"""

from raydiff_ros.estimation import (
    EstimatorError,
    EstimatorOptions,
    PoseEstimator,
    create_estimator,
    estimator_entry,
    parse_options,
)


def build_estimator(name: str, model_dir: str, device: str, dtype: str, num_samples: int,
                    seed: int, refinement: str = 'none', options: str = '') -> PoseEstimator:
    """The estimator named ``name``, followed by ``refinement`` ('none', 'guided' or 'bundle');
    ``options``: its options as comma-separated ``KEY=VALUE`` (e.g. ``prior=camera_ray_token``
    for ``fused``).

    Raises:
        EstimatorError: unknown name, an estimator that needs the ground truth, malformed or
            unknown options, or any failure to build it (missing model, corrupt checkpoint, a
            refinement it cannot take), with the reason.
    """
    if estimator_entry(name).needs_ground_truth:
        raise EstimatorError(f'estimator {name!r} needs ground truth; it cannot run in the node')
    return create_estimator(name, EstimatorOptions(
        seed=seed, model_dir=model_dir or None, device=device, dtype=dtype,
        num_samples=num_samples, refinement=refinement, extra=parse_options(options)))
