"""Choice of the refinement applied after an estimator (``raydiff-eval --refine``, the node's
``refinement`` parameter).

* ``'none'``: the estimator itself;
* ``'bundle'``: ``RefinedEstimator`` (any estimator): verified SIFT matches, then robust
  Sampson-error bundle adjustment of the predicted poses with the known intrinsics;
* ``'guided'``: ``GuidedRayDiffusionEstimator`` (ray-diffusion estimators only): verified SIFT
  matches, then the diffusion sampler with Sampson guidance of x0 in its last steps. Falls back
  to the plain sampler (and says so) without intrinsics or with too few matches; raises
  :class:`RefinementError` for estimators without a sampler (``classical_sift``, the oracles)
  and for the one-step regression model.

Refining estimators expose ``last_refinement_seconds`` (what the refinement added to the
estimate; ``raydiff-eval`` reports it) and ``last_report``.

Light to import: torch and OpenCV are imported only when a refinement is chosen.
"""

from raydiff_ros.evaluation.estimators import PoseEstimator

REFINEMENTS = ('none', 'guided', 'bundle')
"""Values of ``raydiff-eval --refine`` and of the node's ``refinement`` parameter."""


class RefinementError(ValueError):
    """A refinement was asked of an estimator it cannot refine."""


def with_refinement(estimator: PoseEstimator, refine: str) -> PoseEstimator:
    """``estimator`` itself for ``'none'``, wrapped in ``RefinedEstimator`` for ``'bundle'`` or
    in ``GuidedRayDiffusionEstimator`` for ``'guided'`` (see the module docstring).

    Raises:
        ValueError: ``refine`` is not one of :data:`REFINEMENTS`.
        RefinementError: ``'guided'`` for an estimator that is not a ray-diffusion one.
    """
    if refine not in REFINEMENTS:
        raise ValueError(f'refine must be one of {REFINEMENTS}, got {refine!r}')
    if refine == 'none':
        return estimator
    if refine == 'guided':
        from raydiff_ros.refinement.guided_estimator import GuidedRayDiffusionEstimator
        return GuidedRayDiffusionEstimator(estimator)
    from raydiff_ros.refinement.refined_estimator import RefinedEstimator
    return RefinedEstimator(estimator)
