"""``fused``: the ray prior fused with verified learned matches; ``matches``: the matches alone.

For one view set of N images (known intrinsics, else the prior's, else a guess):

1. prior: the ray model draws S samples of the whole set (``options.num_samples``); with
   known intrinsics and ``prior_on_demand``, only after step 5 has found a view that the
   verified pairs do not place (then step 5 is redone with it), since with every view placed
   it would only add its low-weight edges and centre anchor;
2. features: local features once per image (``matcher``: XFeat, ALIKED, DISK or SIFT; and
   the ``first_matcher``'s, SIFT by default);
3. matching: every pair, or the ``max_pairs`` most similar ones (:func:`select_pairs`; its
   time counts as matching); each chosen pair is matched by ``first_matcher`` first, and only
   the pairs it leaves unverified by ``matcher``;
4. geometry: poselib's LO-RANSAC essential matrix per pair; pairs with enough inliers are
   verified (rotation, translation direction, confidence); when the verified pairs leave the
   views in separate groups, up to ``max_retry_pairs`` attempted pairs between groups (near
   misses first; at least ``retry_min_inliers`` inliers) are matched again by
   ``retry_matcher``, then up to ``max_turned_pairs`` pairs still between groups by
   ``matcher`` with one image turned by quarter turns (cameras rolled against each other);
5. fusion: rotation cycles over verified triangles reject wrong pairs; the prior sample that
   agrees best with the verified rotations is the start; rotations are chained along the most
   confident verified pairs (a camera nobody matches directly is reached through others),
   then averaged robustly over verified edges (weight: confidence) and the start sample's
   edges (weight ``prior_weight``); edges still off by ``outlier_threshold_deg`` are dropped
   and the averaging redone; centres solve the verified directions (optionally with the
   relative baseline lengths that points shared by two pairs give: ``shared_point_lengths``),
   anchored to the start sample's centres;
6. bundle adjustment: the Sampson-error bundle adjustment of :mod:`raydiff_ros.refinement`
   on all verified inliers.

Every camera says what fixed it (``pose_sources``): ``'reference'`` (view 0),
``'verified_matches'`` (linked to view 0 by verified pairs), ``'prior'`` (the prior alone) or,
for ``matches`` without a prior, ``'fallback'`` (identity rotation at view 0's centre). The
samples carry the prior's spread for prior cameras and none for verified ones, so the published
covariances say the same. Without a usable matcher, or when nothing verifies, the result is
the prior's and says so. ``timings_s``: prior, features, matching, geometry, fusion,
bundle_adjustment, total.
"""

from dataclasses import dataclass, replace
import logging
import time
from typing import Optional

import numpy as np

from raydiff_ros.estimation.contract import (
    POSE_SOURCE_REFERENCE,
    EstimationResult,
    EstimatorError,
    PoseEstimator,
    ViewSetInput,
)
from raydiff_ros.estimation.registry import EstimatorOptions, create_estimator, typed_options
from raydiff_ros.features.local_features import (
    FeatureMatcher,
    LocalFeatures,
    LocalFeaturesConfig,
    MatcherUnavailableError,
)
from raydiff_ros.features.matching import PairMatches, guess_intrinsics, normalized_points
from raydiff_ros.features.relative_pose import TwoViewConfig
from raydiff_ros.fusion.baseline_lengths import length_ratios, relative_lengths, unit_depths
from raydiff_ros.fusion.view_graph import (
    ViewGraph,
    bridging_pairs,
    consistent_edges,
    select_pairs,
    turned_tries,
    verify_pairs,
)
from raydiff_ros.geometry.averaging import (
    average_rotations,
    chain_rotations,
    component_labels,
    direction_errors_deg,
    maximum_spanning_tree,
    rotation_residuals_deg,
    solve_centres,
)
from raydiff_ros.geometry.transforms import (
    invert_transforms,
    make_transforms,
    rotation_angle_deg,
    translations_from_centers,
)
from raydiff_ros.refinement.bundle import BundleConfig, refine_poses

LOGGER = logging.getLogger(__name__)

POSE_SOURCE_VERIFIED = 'verified_matches'
POSE_SOURCE_PRIOR = 'prior'
POSE_SOURCE_FALLBACK = 'fallback'
PRIOR_NONE = 'none'
PIPELINE_NONE = 'none'
SAMPLE_SCORE_CAP_DEG = 30.0
"""A verified edge disagreeing with a prior sample by more than this counts as this much."""
VERIFIED_UNCERTAINTY_FLOOR_DEG = 0.1
LENGTHS_DIRECTION_SLACK_DEG = 2.0
"""Shared-point lengths are kept only if no direction ends farther than this beyond its error
with free lengths."""


@dataclass(frozen=True)
class FusedConfig:
    """Settings of ``fused`` and ``matches`` (``EstimatorOptions.extra`` by field name).

    Attributes:
        prior: registry name of the prior, or 'none' (``matches``).
        matcher: feature pipeline (:data:`~raydiff_ros.features.local_features.METHODS`).
        first_matcher: pipeline tried first on every chosen pair ('none': no first try); the
            pairs it verifies are not matched again by ``matcher``. SIFT by default: on the
            real scenes every pair it verified was right (README, "Which matcher"), it
            verifies wide pairs the learned matchers miss on temple_ring, and its matching
            costs a tenth of LighterGlue's.
        first_keypoints: keypoints per image of the first try.
        max_keypoints: keypoints per image.
        depth_confidence: LightGlue's early stop of the learned matchers (see
            :class:`~raydiff_ros.features.local_features.LocalFeaturesConfig`).
        max_image_side: longer side the features are extracted at (pixels).
        max_pairs: pairs matched per view set at most (0: all pairs); only sets of 7 or more
            views have more than 20 pairs. Chosen on the rendered tuning sets (README,
            "Settings tried"): 20 against 16 gave rotation acc@15 41.5 against 36.3 % at
            N = 8, at 2.7 s against 2.3 s on the benchmark once the prior runs on demand.
        min_pairs_per_view: with ``max_pairs``, each view's most similar partners kept.
        min_inliers, min_inlier_ratio, max_epipolar_error_px: pair verification.
        retry_matcher: feature pipeline of the second try of bridging near misses ('none': no
            second try).
        retry_keypoints: keypoints per image of the second try.
        retry_min_inliers: fewest first-try inliers of a pair worth a second try; 0 (the
            default): any attempted pair between groups, near misses first, then the pairs
            with the most matches. ALIKED registers pairs XFeat cannot fit at all (README,
            "Which matcher": temple_ring 60-90 deg 0.33 against 0.00, nerf_lego 30-60 deg 0.54
            against 0.23); the cost falls only on sets whose views the first tries leave apart.
        max_retry_pairs: second tries per view set at most.
        max_turned_pairs: pairs between groups matched again by ``matcher`` with one image
            turned by 90, 180 or 270 deg, at most (0: none;
            :func:`~raydiff_ros.fusion.view_graph.turned_tries`): cameras mounted rolled
            against each other (a camera upside down or sideways on a rig, an orbit whose
            images were taken with the camera turned) share points the learned descriptors
            cannot match upright. Tried after the second tries, on the pairs they leave apart
            (tried first, a turned pair of the demo rig, 2 deg off, took the place of the
            second try's 0.5 deg pair). Set on rendered data (README, "Turned tries"):
            rotation acc@15 48.6 / 50.8 / 46.1 % against 43.1 / 44.6 / 41.5 % at N = 3, 5, 8
            on the tuning sets (tried first), where views from opposite sides see the floor
            turned.
        turned_min_gain: how many times the upright overlap score a turned one must reach
            (the right turn's median gain was 1.24 on rendered pairs, a wrong turn's 0.96).
        cycle_threshold_deg: largest rotation error of a consistent triangle.
        outlier_threshold_deg: verified edges off by more after averaging are dropped.
        direction_threshold_deg: translation directions off by more are dropped.
        prior_on_demand: with known intrinsics, match first and run the prior only when the
            verified pairs leave some view unplaced (with every view placed, the prior would
            only add its low-weight edges and anchor); False: always run it, first.
        prior_weight: weight of a prior rotation edge against a verified edge of confidence 1.
        anchor_weight: weight of the centre anchor (the prior's, or chained, centre
            differences) against a verified direction of confidence 1: small, so that it fixes
            scale and unconstrained cameras without bending verified directions.
        shared_point_lengths: baseline lengths from the points that verified pairs share
            in a common view (:mod:`~raydiff_ros.fusion.baseline_lengths`), held fixed in the
            centre solve once the direction outliers are gone, and kept only if no direction
            ends more than ``LENGTHS_DIRECTION_SLACK_DEG`` farther off; off (the default): from
            the directions alone (how they close around triangles) and the anchor. Off until
            shown useful on real scenes (README, "Baseline lengths from shared points"): a
            first version without the guard lost right rotations on temple_ring (N = 6: 33.0
            against 36.7 %); the guarded one is within 1 point of the default at every N on
            both scenes (measured at the end of stop 24: the switch is left for a stop that can
            test it).
        min_shared_points: fewest shared points that relate two pairs' lengths.
        bundle_adjustment: run the Sampson bundle adjustment at the end.
        bundle_iterations: its Levenberg-Marquardt iterations at most. Its start is already
            the fused geometry: on 24 rendered 640 x 480 view sets (``raydiff-render
            --num-sets 24 --views-per-set 8 --image-size 640x480 --seed 7``, not the real
            scenes), N = 3, 5, 8, rotation acc@15 was 41.7 / 44.6 / 36.3 % after 20 iterations
            and 41.7 / 42.9 / 36.3 % after 50 (``raydiff-eval ... --option
            bundle_iterations=50``), at under half the bundle adjustment's time.
    """

    prior: str = 'ray_diffusion'
    matcher: str = 'xfeat'
    first_matcher: str = 'sift'
    first_keypoints: int = 1024
    max_keypoints: int = 1024
    depth_confidence: Optional[float] = LocalFeaturesConfig.depth_confidence
    max_image_side: int = 640
    max_pairs: int = 20
    min_pairs_per_view: int = 2
    min_inliers: int = 40
    min_inlier_ratio: float = 0.3
    max_epipolar_error_px: float = 1.0
    retry_matcher: str = 'aliked'
    retry_keypoints: int = 1024
    retry_min_inliers: int = 0
    max_retry_pairs: int = 4
    max_turned_pairs: int = 4
    turned_min_gain: float = 1.1
    cycle_threshold_deg: float = 5.0
    outlier_threshold_deg: float = 10.0
    direction_threshold_deg: float = 20.0
    prior_on_demand: bool = True
    prior_weight: float = 0.05
    anchor_weight: float = 1e-3
    shared_point_lengths: bool = False
    min_shared_points: int = 10
    bundle_adjustment: bool = True
    bundle_iterations: int = 20

    def __post_init__(self) -> None:
        if self.max_pairs < 0 or self.min_pairs_per_view < 1 or self.bundle_iterations < 1:
            raise EstimatorError('max_pairs must be >= 0, min_pairs_per_view and '
                                 'bundle_iterations >= 1')
        if min(self.cycle_threshold_deg, self.outlier_threshold_deg,
               self.direction_threshold_deg, self.prior_weight, self.anchor_weight) <= 0:
            raise EstimatorError('thresholds and prior_weight must be positive')

    def two_view(self, seed: int) -> TwoViewConfig:
        return TwoViewConfig(max_epipolar_error_px=self.max_epipolar_error_px,
                             min_inliers=self.min_inliers,
                             min_inlier_ratio=self.min_inlier_ratio, seed=seed)

    def _differs_from_matcher(self, method: str, keypoints: int) -> bool:
        """Whether pipeline ``method`` with ``keypoints`` is on and not ``matcher`` itself."""
        return method != PIPELINE_NONE and (method != self.matcher
                                            or keypoints != self.max_keypoints)

    @property
    def first_tries(self) -> bool:
        """Whether a first try can verify anything ``matcher`` would not be asked again."""
        return self._differs_from_matcher(self.first_matcher, self.first_keypoints)

    @property
    def retries(self) -> bool:
        """Whether second tries can find anything the first did not."""
        return self._differs_from_matcher(self.retry_matcher, self.retry_keypoints)

    def features(self, device: str, method: Optional[str] = None,
                 keypoints: Optional[int] = None) -> LocalFeaturesConfig:
        """The feature pipeline ``method`` with ``keypoints`` (default: ``matcher`` with
        ``max_keypoints``); image side and early stop as set here."""
        return LocalFeaturesConfig(method=method or self.matcher,
                                   max_keypoints=keypoints or self.max_keypoints,
                                   depth_confidence=self.depth_confidence,
                                   max_image_side=self.max_image_side, device=device)


@dataclass
class FusionReport:
    """What the last estimate used: pairs chosen, matching attempts (a pair the first try
    left unverified is matched again, a bridging near miss a third time), pairs verified by the
    first try, tried turned and verified so, retried, verified in all and kept after the cycle
    checks (turned tries come after the second tries); whether the prior ran, and its chosen
    sample."""

    pairs_selected: int = 0
    pairs_attempted: int = 0
    pairs_first_verified: int = 0
    pairs_turned: int = 0
    pairs_turned_verified: int = 0
    pairs_retried: int = 0
    pairs_verified: int = 0
    pairs_kept: int = 0
    prior_sample: int = 0
    prior_run: bool = False
    matcher_error: str = ''


class FusedEstimator:
    """The prior fused with verified matches (see the module docstring).

    Args:
        prior: the prior estimator, or None (matches alone).
        config: settings.
        device: device of the matcher.
        seed: RANSAC seed.
        name: registry name reported in logs.
    """

    def __init__(self, prior: Optional[PoseEstimator], config: FusedConfig, device: str = 'auto',
                 seed: int = 0, name: str = 'fused') -> None:
        self.name = name
        self.prior = prior
        self.config = config
        self.two_view = config.two_view(seed)
        self.device = device
        self.matcher_error = ''
        self._retry_matcher: Optional[FeatureMatcher] = None
        self.first_matcher: Optional[FeatureMatcher] = None
        try:
            self.matcher: Optional[FeatureMatcher] = FeatureMatcher(config.features(device))
            if config.first_tries:
                self.first_matcher = FeatureMatcher(config.features(
                    device, config.first_matcher, config.first_keypoints))
        except MatcherUnavailableError as error:
            if prior is None:
                raise
            self.matcher = None
            self.matcher_error = str(error)
            LOGGER.warning('%s: no matcher (%s); estimates are the prior alone', name, error)
        self.last_report = FusionReport()

    def estimate(self, view_set: ViewSetInput) -> EstimationResult:
        start = time.perf_counter()
        timings: dict[str, float] = {}
        images = view_set.image_list()
        num = len(images)
        prior = None
        on_demand = (self.config.prior_on_demand and view_set.K is not None
                     and self.matcher is not None)
        if self.prior is not None and not on_demand:
            prior = self.prior.estimate(view_set)
            timings['prior'] = time.perf_counter() - start
        K = self._intrinsics(view_set, prior, images)
        report = FusionReport(matcher_error=self.matcher_error)
        graph = ViewGraph(num_views=num)
        if self.matcher is not None:
            tick = time.perf_counter()
            features = [self.matcher.extract(image) for image in images]
            timings['features'] = time.perf_counter() - tick
            tick = time.perf_counter()
            pairs = select_pairs(self.matcher, features, self.config.max_pairs,
                                 self.config.min_pairs_per_view)
            selection_s = time.perf_counter() - tick
            report.pairs_selected = len(pairs)
            sizes = [(image.shape[1], image.shape[0]) for image in images]
            if self.first_matcher is not None:
                tick = time.perf_counter()
                first = [self.first_matcher.extract(image) for image in images]
                timings['features'] += time.perf_counter() - tick
                graph = verify_pairs(self.first_matcher, first, pairs, K, sizes, self.two_view,
                                     near_misses=False)
                report.pairs_first_verified = len(graph.verified)
                pairs = [pair for pair in pairs if pair not in graph.verified]
            graph = verify_pairs(self.matcher, features, pairs, K, sizes, self.two_view, graph)
            retry = bridging_pairs(graph, self.config.retry_min_inliers,
                                   self.config.max_retry_pairs)
            if retry and self.config.retries:
                report.pairs_retried = len(retry)
                tick = time.perf_counter()
                matcher = self._second_matcher()
                dense = {k: matcher.extract(images[k]) for pair in retry for k in pair}
                timings['features'] += time.perf_counter() - tick
                verify_pairs(matcher, [dense.get(k) for k in range(num)], retry, K, sizes,
                             self.two_view, graph)
            if self.config.max_turned_pairs > 0:
                timings['features'] += self._turned_tries(images, features, K, sizes, graph,
                                                          report)
            timings['matching'] = selection_s + graph.matching_s
            timings['geometry'] = graph.geometry_s
        report.pairs_attempted, report.pairs_verified = len(graph.attempted), len(graph.verified)
        tick = time.perf_counter()
        consistent, ratios = self._verified_edges(graph, K)
        poses, sources, kept, report.prior_sample = self._fuse(num, prior, graph, consistent,
                                                               ratios)
        fusion_s = time.perf_counter() - tick
        if self.prior is not None and prior is None and POSE_SOURCE_FALLBACK in sources:
            tick = time.perf_counter()
            prior = self.prior.estimate(view_set)  # the matches left some view unplaced
            timings['prior'] = time.perf_counter() - tick
            tick = time.perf_counter()
            poses, sources, kept, report.prior_sample = self._fuse(num, prior, graph,
                                                                   consistent, ratios)
            fusion_s += time.perf_counter() - tick
        report.pairs_kept, report.prior_run = len(kept), prior is not None
        timings['fusion'] = fusion_s
        if self.config.bundle_adjustment and kept:
            tick = time.perf_counter()
            poses = self._bundle_adjust(poses, K, [graph.verified[pair] for pair in kept])
            timings['bundle_adjustment'] = time.perf_counter() - tick
        timings['total'] = time.perf_counter() - start
        self.last_report = report
        return self._result(poses, sources, prior, report.prior_sample, K,
                            view_set.K is None, timings)

    # -- steps ---------------------------------------------------------------------------------

    def _turned_tries(self, images: list, features: list, K: np.ndarray, sizes: list,
                      graph: ViewGraph, report: 'FusionReport') -> float:
        """:func:`~raydiff_ros.fusion.view_graph.turned_tries` with ``matcher``; returns the
        seconds spent extracting turned features (the rest counts as matching)."""
        seconds = 0.0

        def turned(view: int, quarter_turns: int) -> LocalFeatures:
            nonlocal seconds
            tick = time.perf_counter()
            found = self.matcher.extract(images[view], quarter_turns)
            seconds += time.perf_counter() - tick
            return found

        tried = turned_tries(self.matcher, features, turned, K, sizes, self.two_view, graph,
                             self.config.max_turned_pairs, self.config.turned_min_gain)
        report.pairs_turned = len(tried)
        report.pairs_turned_verified = len(graph.turns)
        return seconds

    def _second_matcher(self) -> FeatureMatcher:
        """The matcher of second tries (``retry_keypoints``), built on first use."""
        if self._retry_matcher is None:
            self._retry_matcher = FeatureMatcher(self.config.features(
                self.device, self.config.retry_matcher, self.config.retry_keypoints))
        return self._retry_matcher

    @staticmethod
    def _intrinsics(view_set: ViewSetInput, prior: Optional[EstimationResult],
                    images: list) -> np.ndarray:
        if view_set.K is not None:
            return np.asarray(view_set.K, dtype=np.float64)
        if prior is not None and prior.K is not None:
            return prior.K
        return np.stack([guess_intrinsics(im.shape[1], im.shape[0]) for im in images])

    def _verified_edges(self, graph: ViewGraph, K: np.ndarray) -> tuple[list, dict]:
        """The verified pairs that pass the rotation cycles (:func:`consistent_edges`) and the
        length ratios between them (:meth:`_length_ratios`): what :meth:`_fuse` starts from,
        the same with or without the prior."""
        consistent = consistent_edges(graph.verified, self.config.cycle_threshold_deg,
                                      self.two_view)
        return consistent, self._length_ratios(consistent, graph, K)

    def _fuse(self, num: int, prior: Optional[EstimationResult], graph: ViewGraph,
              consistent: list, ratios: dict):
        """(N, 4, 4) ``reference_T_camera``, pose sources, kept edges, chosen prior sample.

        ``consistent`` and ``ratios`` come from :meth:`_verified_edges`; pairs that the
        rotation averaging rejects leave ``consistent`` here (``ratios`` between them are then
        unused)."""
        cfg = self.config
        kept = list(consistent)
        relative = {pair: graph.verified[pair].R for pair in kept}
        confidence = {pair: graph.verified[pair].confidence(self.two_view) for pair in kept}
        sample = self._best_sample(prior, relative, confidence)
        if prior is not None:
            start_poses = prior.samples_reference_T_camera[sample]
        else:
            start_poses = np.repeat(np.eye(4)[None], num, axis=0)
        # World = view 0's optical frame; R[k] = cam_k_R_world.
        start_R = np.swapaxes(start_poses[:, :3, :3], -1, -2)
        start_C = start_poses[:, :3, 3]
        for _ in range(2):
            rotations = self._rotations(num, start_R, relative, confidence, prior is not None)
            residuals = rotation_residuals_deg(rotations, kept,
                                               np.array([relative[p] for p in kept]))
            outliers = [p for p, r in zip(kept, residuals, strict=True)
                        if r > cfg.outlier_threshold_deg]
            if not outliers:
                break
            kept = [p for p in kept if p not in outliers]
            relative = {p: relative[p] for p in kept}
            confidence = {p: confidence[p] for p in kept}
        label = component_labels(num, kept)
        linked = {k for k in range(num) if label[k] == label[0]}
        anchor = start_C if prior is not None else self._chained_centres(num, rotations, kept,
                                                                          graph)
        centres = self._centres(rotations, kept, graph, confidence, anchor, ratios)
        poses = invert_transforms(make_transforms(rotations, translations_from_centers(
            rotations, centres)))
        unplaced = POSE_SOURCE_PRIOR if prior is not None else POSE_SOURCE_FALLBACK
        sources = tuple(POSE_SOURCE_REFERENCE if k == 0 else
                        POSE_SOURCE_VERIFIED if k in linked else unplaced for k in range(num))
        return poses, sources, kept, sample

    @staticmethod
    def _best_sample(prior: Optional[EstimationResult], relative: dict,
                     confidence: dict) -> int:
        """The prior sample whose relative rotations agree best with the verified ones."""
        if prior is None or not relative:
            return 0
        costs = []
        for poses in prior.samples_reference_T_camera:
            R = np.swapaxes(poses[:, :3, :3], -1, -2)
            cost = sum(confidence[(i, j)] * min(SAMPLE_SCORE_CAP_DEG, float(rotation_angle_deg(
                R[j] @ R[i].T, relative[(i, j)]))) for i, j in relative)
            costs.append(cost)
        return int(np.argmin(costs))

    def _rotations(self, num: int, start_R: np.ndarray, relative: dict, confidence: dict,
                   with_prior: bool) -> np.ndarray:
        rotations = np.array(start_R)
        placed: set[int] = set()
        for root in range(num):
            if root in placed:
                continue
            tree = maximum_spanning_tree(num, confidence, root)
            if root != 0 and not tree:
                continue
            rotations = chain_rotations(rotations, tree, relative)
            placed.update([root] + [child for _, child in tree])
        edges = list(relative)
        measured = [relative[p] for p in edges]
        weights = [confidence[p] for p in edges]
        if with_prior:
            for i in range(num):
                for j in range(i + 1, num):
                    edges.append((i, j))
                    measured.append(start_R[j] @ start_R[i].T)
                    weights.append(self.config.prior_weight)
        return average_rotations(rotations, edges, np.array(measured).reshape(-1, 3, 3),
                                 np.array(weights), fixed=0)

    @staticmethod
    def _chained_centres(num: int, rotations: np.ndarray, kept: list,
                         graph: ViewGraph) -> np.ndarray:
        """Unit-baseline centres along the verified tree (no prior: the anchor)."""
        centres = np.zeros((num, 3))
        weights = {pair: graph.verified[pair].num_inliers for pair in kept}
        for parent, child in maximum_spanning_tree(num, weights, 0):
            if (parent, child) in graph.verified:
                t = graph.verified[(parent, child)].t
                centres[child] = centres[parent] - rotations[child].T @ t
            else:
                t = graph.verified[(child, parent)].t
                centres[child] = centres[parent] + rotations[parent].T @ t
        return centres

    def _length_ratios(self, edges: list, graph: ViewGraph, K: np.ndarray) -> dict:
        """Log length ratios of the verified ``edges`` that share points in a common view
        (:mod:`~raydiff_ros.fusion.baseline_lengths`); none when ``shared_point_lengths`` is
        off."""
        if not self.config.shared_point_lengths:
            return {}
        points, depths = {}, {}
        for pair in edges:
            pose = graph.verified[pair]
            rays_i, rays_j = (np.concatenate([normalized_points(pixels, K[k]),
                                              np.ones((len(pixels), 1))], axis=1)
                              for pixels, k in ((pose.points_i, pair[0]),
                                                (pose.points_j, pair[1])))
            points[pair] = (pose.points_i, pose.points_j)
            depths[pair] = unit_depths(pose.R, pose.t, rays_i, rays_j)
        return length_ratios(points, depths, min_shared=self.config.min_shared_points)

    def _centres(self, rotations: np.ndarray, kept: list, graph: ViewGraph, confidence: dict,
                 anchor: np.ndarray, ratios: dict) -> np.ndarray:
        """Centres from the verified directions. A direction whose free length comes out
        negative (the anchor points the other way) gets the anchor's length with its own sign;
        directions still off by ``direction_threshold_deg`` are dropped. Then, with ``ratios``,
        the remaining edges that ratios link get those relative lengths (scaled to the free
        solution), kept only if no direction moves more than ``LENGTHS_DIRECTION_SLACK_DEG``
        further from its measurement than with free lengths."""
        cfg = self.config
        edges = list(kept)
        known: dict = {}
        for _ in range(len(kept) + 2):
            centres, lengths, errors = self._solve_centres(rotations, edges, graph, confidence,
                                                           anchor, known)
            flipped = [p for p, length in zip(edges, lengths, strict=True)
                       if length <= 0 and p not in known]
            if flipped:
                for i, j in flipped:
                    known[(i, j)] = max(float(np.linalg.norm(anchor[i] - anchor[j])),
                                        float(np.median(np.abs(lengths))), 1e-6)
                continue
            bad = [p for p, error in zip(edges, errors, strict=True)
                   if error > cfg.direction_threshold_deg]
            if not bad:
                break
            edges = [p for p in edges if p not in bad]
        else:
            return centres  # never settled: the lengths below would belong to other edges
        groups = relative_lengths(edges, ratios) if ratios and edges else []
        if not groups:
            return centres
        free = dict(zip(edges, lengths, strict=True))
        held = dict(known)
        for group in groups:
            scales = [free[p] / group[p] for p in group if free[p] > 0]
            if scales:
                scale = float(np.exp(np.median(np.log(scales))))
                held.update({p: scale * length for p, length in group.items()})
        held_centres, _, held_errors = self._solve_centres(rotations, edges, graph, confidence,
                                                           anchor, held)
        if np.all(held_errors <= errors + LENGTHS_DIRECTION_SLACK_DEG):
            return held_centres
        return centres

    def _solve_centres(self, rotations: np.ndarray, edges: list, graph: ViewGraph,
                       confidence: dict, anchor: np.ndarray, known: dict) -> tuple:
        """(centres (N, 3), lengths (E,), direction errors (E,) in deg) of ``edges``, with
        the lengths in ``known`` held."""
        translations = np.array([graph.verified[p].t for p in edges]).reshape(-1, 3)
        weights = np.array([confidence[p] for p in edges])
        lengths_in = {k: known[p] for k, p in enumerate(edges) if p in known}
        centres, lengths = solve_centres(rotations, edges, translations, weights, anchor,
                                         self.config.anchor_weight, fixed=0,
                                         known_lengths=lengths_in)
        errors = direction_errors_deg(rotations, centres, edges, translations)
        return centres, lengths, np.asarray(errors, dtype=np.float64)

    def _bundle_adjust(self, poses: np.ndarray, K: np.ndarray, pairs: list) -> np.ndarray:
        world_T = invert_transforms(poses)
        matches = [PairMatches(i=p.i, j=p.j, points_i=p.points_i, points_j=p.points_j)
                   for p in pairs]
        R, t, report = refine_poses(world_T[:, :3, :3], world_T[:, :3, 3], K, matches,
                                    BundleConfig(max_iterations=self.config.bundle_iterations))
        if not report.refined:
            return poses
        return invert_transforms(make_transforms(R, t))

    def _result(self, poses: np.ndarray, sources: tuple, prior: Optional[EstimationResult],
                sample: int, K: np.ndarray, intrinsics_estimated: bool,
                timings: dict) -> EstimationResult:
        num = poses.shape[0]
        verified = np.array([s != POSE_SOURCE_PRIOR and s != POSE_SOURCE_FALLBACK
                             for s in sources])
        if prior is None:
            samples = poses[None]
            uncertainty = np.where(verified, VERIFIED_UNCERTAINTY_FLOOR_DEG, 180.0)
        else:
            prior_samples = prior.samples_reference_T_camera
            start = prior_samples[sample]
            # Prior cameras keep the prior's spread around their fused pose.
            offsets = invert_transforms(start)[None] @ prior_samples
            samples = np.where(verified[None, :, None, None], poses[None], poses[None] @ offsets)
            prior_uncertainty = (prior.uncertainty if prior.uncertainty is not None
                                 else np.full(num, 180.0))
            uncertainty = np.where(verified, VERIFIED_UNCERTAINTY_FLOOR_DEG, prior_uncertainty)
        uncertainty[0] = 0.0
        return EstimationResult(
            reference_T_camera=poses, samples_reference_T_camera=samples,
            K=K, intrinsics_estimated=intrinsics_estimated, uncertainty=uncertainty,
            timings_s=timings, pose_sources=sources)


def _config(options: EstimatorOptions, name: str, **overrides) -> FusedConfig:
    return replace(FusedConfig(**typed_options(FusedConfig, options.extra, name)),
                   **overrides)


def make_fused(options: EstimatorOptions) -> FusedEstimator:
    """Registry factory of ``fused`` (extra: :class:`FusedConfig` fields)."""
    config = _config(options, 'fused')
    prior = None
    if config.prior != PRIOR_NONE:
        prior = create_estimator(config.prior, replace(options, refinement='none', extra={}))
    return FusedEstimator(prior, config, device=options.device, seed=options.seed)


def make_matches(options: EstimatorOptions) -> FusedEstimator:
    """Registry factory of ``matches``: verified matches alone, no prior (extra:
    :class:`FusedConfig` fields, e.g. ``matcher``)."""
    config = _config(options, 'matches', prior=PRIOR_NONE)
    return FusedEstimator(None, config, device=options.device, seed=options.seed,
                          name='matches')

