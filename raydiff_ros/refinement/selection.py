"""Choice of the refinement applied after an estimator (``raydiff-eval --refine``).

Light to import: torch and OpenCV are imported only when ``'bundle'`` is chosen.
"""

from raydiff_ros.evaluation.estimators import PoseEstimator

REFINEMENTS = ('none', 'bundle')
"""Values of ``raydiff-eval --refine``."""


def with_refinement(estimator: PoseEstimator, refine: str) -> PoseEstimator:
    """``estimator`` itself for ``'none'``, wrapped in ``RefinedEstimator`` (SIFT matching and
    Sampson-error bundle adjustment) for ``'bundle'``."""
    if refine not in REFINEMENTS:
        raise ValueError(f'refine must be one of {REFINEMENTS}, got {refine!r}')
    if refine == 'none':
        return estimator
    from raydiff_ros.refinement.refined_estimator import RefinedEstimator
    return RefinedEstimator(estimator)
