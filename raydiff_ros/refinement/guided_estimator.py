"""Ray diffusion with Sampson guidance of its last sampler steps (refinement ``'guided'``).

``GuidedRayDiffusionEstimator(base)`` wraps a :class:`RayDiffusionEngine`. Per view set it
matches the images (``match_view_set``, verified SIFT matches in full-image pixels), then runs
the base engine with :class:`GuidedRaySampler` in place of the model's sampler: the same
x_T, chunking and schedule, with ``x0`` moved down the gradient of the robust Sampson error of
the matches in the last ``GuidanceConfig.last_steps`` steps (``guidance.sample_rays_guided``).
Everything else (crop, rays to cameras with the known intrinsics, medoid sample) is the
engine's plain path.

Fallbacks (the plain sampler runs, ``last_report.guided`` is False with the reason, and a
warning is logged): intrinsics unknown (the guidance needs K), or fewer than
``GuidedConfig.min_matches`` verified matches. A regression model has no sampler steps to
guide: the constructor raises :class:`RefinementError`, as it does for an estimator that is not
a ray-diffusion one.

Cost: the result's ``timings_s`` gains ``matching``, ``guidance`` and ``refinement`` (their
sum: what the guidance adds to a plain estimate) entries.
"""

from dataclasses import dataclass, field, replace
import logging
import time
from typing import Callable, Optional

import numpy as np
import torch

from raydiff_ros.estimation.contract import EstimationResult, PoseEstimator, ViewSetInput
from raydiff_ros.estimation.registry import RefinementError
from raydiff_ros.features.matching import MatchingConfig, PairMatches, match_view_set
from raydiff_ros.inference.engine import RayDiffusionEngine
from raydiff_ros.inference.preprocess import PreprocessedViews
from raydiff_ros.model.network import RayDiffusionModel
from raydiff_ros.refinement.guidance import (
    GuidanceConfig,
    GuidanceProblem,
    GuidedSampleResult,
    sample_rays_guided,
)

LOGGER = logging.getLogger(__name__)

Matcher = Callable[[list[np.ndarray], np.ndarray], list[PairMatches]]
"""matcher(N (H, W, 3) uint8 images, K (N, 3, 3)) -> verified matches in full-image pixels."""


@dataclass(frozen=True)
class GuidedConfig:
    """Settings of :class:`GuidedRayDiffusionEstimator`.

    Attributes:
        guidance: step, robust scale and number of guided sampler steps.
        matching: SIFT matching settings.
        min_matches: fewer verified matches in all -> the plain sampler runs.
    """

    guidance: GuidanceConfig = field(default_factory=GuidanceConfig)
    matching: MatchingConfig = field(default_factory=MatchingConfig)
    min_matches: int = 30

    def __post_init__(self) -> None:
        if self.min_matches < 1:
            raise ValueError(f'min_matches must be >= 1, got {self.min_matches}')


@dataclass(frozen=True)
class GuidanceReport:
    """What the last guided estimate did.

    Attributes:
        guided: False when the plain sampler ran (see ``reason``).
        reason: why the guidance was skipped ('' when guided).
        num_matches: verified matches found (0 when matching did not run).
        matching_seconds: wall time of the matching (and checks before it).
        guidance_seconds: wall time of the guidance steps (0 when not guided).
        losses: Sampson loss before each guidance step (empty when not guided).
    """

    guided: bool
    reason: str
    num_matches: int
    matching_seconds: float
    guidance_seconds: float
    losses: tuple[float, ...] = ()


class GuidedRaySampler:
    """An engine ``RaySampler`` that runs ``sample_rays_guided`` for one view set.

    Args:
        K: (N, 3, 3) pixel intrinsics of the full images.
        matches: verified matches in full-image pixels.
        config: guidance settings.
    """

    def __init__(self, K: np.ndarray, matches: list[PairMatches],
                 config: GuidanceConfig) -> None:
        self.K = np.asarray(K, dtype=np.float64)
        self.matches = matches
        self.config = config
        self.last_result: Optional[GuidedSampleResult] = None

    def __call__(self, model: RayDiffusionModel, features: torch.Tensor,
                 ndc: Optional[torch.Tensor], views: PreprocessedViews, num_samples: int,
                 generator: torch.Generator) -> GuidedSampleResult:
        """Guided rays (num_samples, N, 6, P, P) from features (N, F, P, P), ndc (N, 2, P, P)."""
        if model.config.diffusion.regression:
            raise RefinementError('a regression model has no sampler steps to guide')
        device = features.device
        problem = GuidanceProblem(K=torch.from_numpy(self.K).to(device),
                                  image_size=views.image_sizes.to(device),
                                  crop_params=views.crop_params.to(device),
                                  matches=self.matches)
        batch_features = features.unsqueeze(0).expand(num_samples, *features.shape)
        batch_ndc = None if ndc is None else ndc.unsqueeze(0).expand(num_samples, *ndc.shape)
        self.last_result = sample_rays_guided(
            model, batch_features, batch_ndc, model.schedule, problem, self.config,
            generator=generator, max_images_per_pass=model.config.denoiser.max_num_images)
        return self.last_result


class GuidedRayDiffusionEstimator:
    """A ray-diffusion estimator whose last sampler steps follow the Sampson error of
    verified matches (see the module docstring).

    Args:
        base: the ray-diffusion engine (its model is used as it is).
        config: guidance, matching and fallback settings.
        matcher: replaces SIFT matching (e.g. known correspondences); default
            ``match_view_set`` with ``config.matching``.

    Raises:
        RefinementError: ``base`` is not a ray-diffusion estimator, or its model is the
            one-step regression variant.
    """

    def __init__(self, base: RayDiffusionEngine, config: Optional[GuidedConfig] = None,
                 matcher: Optional[Matcher] = None) -> None:
        if not isinstance(base, RayDiffusionEngine):
            raise RefinementError(
                f"refinement 'guided' needs a ray-diffusion estimator (it guides the diffusion "
                f"sampler); {getattr(base, 'name', type(base).__name__)!r} has no sampler: "
                f"use 'bundle'")
        if base.regression:
            raise RefinementError("refinement 'guided' needs a diffusion model; this is the "
                                  "one-step regression variant (no sampler steps): use 'bundle'")
        self.base = base
        self.name = f'{base.name}+guided'
        self.config = config or GuidedConfig()
        self.matcher = matcher or (
            lambda images, K: match_view_set(images, K, self.config.matching))
        self.last_report: Optional[GuidanceReport] = None

    def estimate(self, view_set: ViewSetInput) -> EstimationResult:
        """The engine's result for the view set, guided when its K is known and there are
        enough verified matches (else the plain sampler's, with the reason logged)."""
        images = view_set.image_list()
        start = time.perf_counter()
        matches: list[PairMatches] = []
        reason = ''
        if view_set.K is None:
            reason = 'intrinsics unknown (the guidance needs K)'
        else:
            matches = self.matcher(images, view_set.K)
            total = sum(pair.num_matches for pair in matches)
            if total < self.config.min_matches:
                reason = f'too few verified matches ({total} < {self.config.min_matches})'
        num_matches = sum(pair.num_matches for pair in matches)
        matching_seconds = time.perf_counter() - start
        if reason:
            LOGGER.warning('guidance skipped, plain sampler used: %s', reason)
            result = self.base.estimate(view_set)
            report = GuidanceReport(False, reason, num_matches, matching_seconds, 0.0)
        else:
            sampler = GuidedRaySampler(view_set.K, matches, self.config.guidance)
            result = self.base.estimate(view_set, sampler=sampler)
            sampled = sampler.last_result
            report = GuidanceReport(True, '', num_matches, matching_seconds,
                                    sampled.guidance_seconds, tuple(sampled.losses))
            result = replace(result, pose_sources=tuple(
                source if k == 0 else f'{source}+guided'
                for k, source in enumerate(result.pose_sources)))
        result.timings_s.update(matching=report.matching_seconds,
                                guidance=report.guidance_seconds,
                                refinement=report.matching_seconds + report.guidance_seconds)
        self.last_report = report
        return result


def with_guidance(estimator: PoseEstimator) -> GuidedRayDiffusionEstimator:
    """Refinement ``'guided'`` of the registry (default settings)."""
    return GuidedRayDiffusionEstimator(estimator)
