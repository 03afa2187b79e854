"""Registry factory of ``pose_diffusion``: the pose-diffusion estimator with its matcher.

:class:`raydiff_ros.inference.pose_diffusion.PoseDiffusionEstimator` takes a matcher of
verified correspondences for its geometry guidance; this module builds it from the features
package (here because ``refinement`` may import both ``inference`` and ``features``):

* ``sift`` (default): :func:`raydiff_ros.features.matching.match_view_set` (SIFT, ratio test,
  essential-matrix RANSAC; OpenCV, always available), as the ``guided`` refinement;
* ``xfeat`` / ``aliked`` / ``disk``: :class:`~raydiff_ros.features.local_features.
  FeatureMatcher`, each pair verified by :func:`~raydiff_ros.features.relative_pose.
  relative_pose` (poselib LO-RANSAC, known intrinsics). A matcher whose weight wheel is missing
  turns the guidance off with a warning (the estimator's ``last_report.reason`` says why).

Options (``EstimatorOptions.extra``, ``--option KEY=VALUE``): ``matcher``, ``max_keypoints``
and the fields of :class:`~raydiff_ros.inference.pose_diffusion.PoseDiffusionOptions`
(``guidance: false`` turns guidance off, ``guidance_steps`` the guided sampler steps, ...).
"""

from dataclasses import dataclass, fields
import logging
from typing import Mapping, Optional

import numpy as np
import torch

from raydiff_ros.estimation.contract import EstimatorError
from raydiff_ros.estimation.registry import EstimatorOptions, typed_options
from raydiff_ros.features.local_features import (
    METHODS,
    FeatureMatcher,
    LocalFeaturesConfig,
    MatcherUnavailableError,
)
from raydiff_ros.features.matching import MatchingConfig, PairMatches, match_view_set
from raydiff_ros.features.relative_pose import MIN_POINTS, TwoViewConfig, relative_pose
from raydiff_ros.inference.pose_diffusion import (
    CorrespondenceMatcher,
    PoseDiffusionEstimator,
    PoseDiffusionOptions,
)
from raydiff_ros.model.default_models import POSE_DIFFUSION_MODEL_NAME, resolve_model_dir
from raydiff_ros.model.pose_diffusion import Correspondences

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class GuidanceMatching:
    """Options of ``pose_diffusion`` beside :class:`PoseDiffusionOptions`: the matcher whose
    verified matches guide the sampler (``sift``, or a learned one of ``features``) and its
    keypoint budget."""

    matcher: str = 'sift'
    max_keypoints: int = 1024


def correspondences_from_matches(matches: list[PairMatches]) -> Correspondences:
    """Per-pair matches -> one :class:`Correspondences` (float64 pixels, M = all matches)."""
    sizes = [pair.num_matches for pair in matches]
    pair_i = np.repeat([pair.i for pair in matches], sizes).astype(np.int64)
    pair_j = np.repeat([pair.j for pair in matches], sizes).astype(np.int64)
    points_i = np.concatenate([pair.points_i for pair in matches] + [np.zeros((0, 2))])
    points_j = np.concatenate([pair.points_j for pair in matches] + [np.zeros((0, 2))])
    return Correspondences(torch.from_numpy(pair_i), torch.from_numpy(pair_j),
                           torch.from_numpy(points_i), torch.from_numpy(points_j))


def build_matcher(method: str, max_keypoints: int, device: str,
                  seed: int) -> tuple[Optional[CorrespondenceMatcher], str]:
    """(matcher, '') or (None, reason) when the method's weights or libraries are missing.

    Raises:
        EstimatorError: unknown method or bad keypoint count.
    """
    if method not in METHODS:
        raise EstimatorError(f'pose_diffusion: matcher must be one of {METHODS}, got '
                             f'{method!r}')
    if method == 'sift':
        config = MatchingConfig(seed=seed)
        return (lambda images, K: correspondences_from_matches(
            match_view_set(images, K, config))), ''
    try:
        features = FeatureMatcher(LocalFeaturesConfig(method=method, max_keypoints=max_keypoints,
                                                      device=device))
    except MatcherUnavailableError as error:
        reason = f'matcher {method!r} unavailable ({error}): guidance off'
        LOGGER.warning('pose_diffusion: %s', reason)
        return None, reason
    two_view = TwoViewConfig(seed=seed)

    def learned(images: list[np.ndarray], K: np.ndarray) -> Correspondences:
        extracted = [features.extract(image) for image in images]
        sizes = [(image.shape[1], image.shape[0]) for image in images]
        pairs = []
        for i in range(len(images)):
            for j in range(i + 1, len(images)):
                index = features.match(extracted[i], extracted[j])
                if len(index) < MIN_POINTS:
                    continue
                pose = relative_pose(i, j, extracted[i].keypoints[index[:, 0]],
                                     extracted[j].keypoints[index[:, 1]], K[i], K[j],
                                     sizes[i], sizes[j], two_view)
                if pose is not None:
                    pairs.append(PairMatches(i, j, pose.points_i, pose.points_j))
        return correspondences_from_matches(pairs)

    return learned, ''


def pose_diffusion_options(extra: Mapping) -> tuple[PoseDiffusionOptions, GuidanceMatching]:
    """The options of ``pose_diffusion`` from ``EstimatorOptions.extra``, checked by name and
    type (:func:`typed_options`)."""
    values = typed_options((PoseDiffusionOptions, GuidanceMatching), extra, 'pose_diffusion')
    names = {f.name for f in fields(GuidanceMatching)}
    return (PoseDiffusionOptions(**{k: v for k, v in values.items() if k not in names}),
            GuidanceMatching(**{k: v for k, v in values.items() if k in names}))


def make_pose_diffusion(options: EstimatorOptions) -> PoseDiffusionEstimator:
    """Registry factory of ``pose_diffusion``: the model of ``options.model_dir``, else the
    shipped ``models/pose_diffusion`` (:class:`ModelNotFoundError` when neither is there)."""
    model_dir = resolve_model_dir(options.model_dir, POSE_DIFFUSION_MODEL_NAME)
    pose_options, matching = pose_diffusion_options(options.extra)
    matcher, reason = None, 'guidance off'
    if pose_options.guidance:
        matcher, reason = build_matcher(matching.matcher, matching.max_keypoints,
                                        options.device, options.seed)
    elif matching.matcher not in METHODS:
        raise EstimatorError(f'pose_diffusion: matcher must be one of {METHODS}, got '
                             f'{matching.matcher!r}')
    return PoseDiffusionEstimator(model_dir, pose_options, device=options.device,
                                  dtype=options.dtype, num_samples=options.num_samples,
                                  seed=options.seed, matcher=matcher, matcher_error=reason,
                                  warmup=options.warmup)
