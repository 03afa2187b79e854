"""The verified view graph of a view set: which pairs to match, their two-view geometry, and
cycle consistency.

* :func:`select_pairs`: all pairs, or at most ``max_pairs`` ranked by a cheap overlap score
  (mutual nearest-neighbour descriptors), each view keeping its ``min_pairs_per_view`` best.
* :func:`verify_pairs`: learned (or SIFT) matches of each selected pair, then
  :func:`~raydiff_ros.features.relative_pose.fit_relative_pose`; accepted fits are verified,
  the others kept as near misses.
* :func:`bridging_pairs`: attempted pairs that would join two groups of views that no verified
  pair links (near misses first, then by match count), worth a second try with another matcher.
* :func:`turned_tries`: pairs between groups matched again with one image turned by quarter
  turns (cameras mounted rolled against each other: the learned descriptors are not rotation
  invariant), the turn chosen by the overlap score.
* :func:`consistent_edges`: rotation cycles over triangles of verified pairs; in a triangle
  whose composed rotation is off by more than ``cycle_threshold_deg``, the weakest edge that no
  consistent triangle supports is rejected.
"""

from collections import Counter
from dataclasses import dataclass, field
from itertools import combinations
import time
from typing import Callable, Optional, Sequence

import numpy as np

from raydiff_ros.features.local_features import FeatureMatcher, LocalFeatures
from raydiff_ros.features.relative_pose import RelativePose, TwoViewConfig, fit_relative_pose
from raydiff_ros.geometry.averaging import component_labels
from raydiff_ros.geometry.transforms import rotation_angle_deg

Edge = tuple[int, int]


@dataclass
class ViewGraph:
    """Verified pairs of a view set and what it cost.

    Attributes:
        num_views: N.
        attempted: pairs matched.
        verified: accepted two-view geometries by pair (i, j), i < j.
        near_misses: fits of attempted pairs that were not accepted (too few inliers).
        match_counts: matches of each attempted pair by the last matcher that tried it.
        turns: pairs verified by :func:`turned_tries`: (turned view, counterclockwise quarter
            turns of its image).
        rejected_by_cycles: verified pairs dropped by :func:`consistent_edges`.
        matching_s, geometry_s: seconds spent matching and fitting two-view geometry.
    """

    num_views: int
    attempted: list[Edge] = field(default_factory=list)
    verified: dict[Edge, RelativePose] = field(default_factory=dict)
    near_misses: dict[Edge, RelativePose] = field(default_factory=dict)
    match_counts: dict[Edge, int] = field(default_factory=dict)
    turns: dict[Edge, tuple[int, int]] = field(default_factory=dict)
    rejected_by_cycles: list[Edge] = field(default_factory=list)
    matching_s: float = 0.0
    geometry_s: float = 0.0


def select_pairs(matcher: FeatureMatcher, features: Sequence[LocalFeatures], max_pairs: int,
                 min_pairs_per_view: int) -> list[Edge]:
    """Pairs (i, j), i < j, to match: all when ``max_pairs`` is 0 or not below their number;
    else each view's ``min_pairs_per_view`` most similar partners, then the most similar pairs
    overall up to ``max_pairs`` (more when the per-view minimum needs it)."""
    num = len(features)
    every = list(combinations(range(num), 2))
    if max_pairs <= 0 or max_pairs >= len(every):
        return every
    score = {(i, j): matcher.similarity(features[i], features[j]) for i, j in every}
    ranked = sorted(every, key=lambda pair: -score[pair])
    chosen: set[Edge] = set()
    for view in range(num):
        mine = [pair for pair in ranked if view in pair]
        chosen.update(mine[:min_pairs_per_view])
    for pair in ranked:
        if len(chosen) >= max_pairs:
            break
        chosen.add(pair)
    return sorted(chosen)


def verify_pairs(matcher: FeatureMatcher, features: Sequence[LocalFeatures],
                 pairs: Sequence[Edge], K: np.ndarray, sizes: Sequence[tuple[int, int]],
                 two_view: TwoViewConfig, graph: Optional[ViewGraph] = None,
                 near_misses: bool = True) -> ViewGraph:
    """Match each pair and keep those whose two-view geometry is verified.

    Args:
        matcher: the feature matcher the features came from.
        features: N extracted images.
        pairs: (i, j), i < j, to try.
        K: (N, 3, 3) intrinsics in pixels.
        sizes: N (width, height).
        two_view: RANSAC threshold and acceptance.
        graph: a graph to add to (a second try of some pairs), else a new one.
        near_misses: keep the fits of pairs that fail as near misses; when False (a first
            try whose failures are matched again anyway), a pair with fewer matches than
            ``two_view.min_inliers`` is not fitted at all, since it cannot be verified.
    """
    graph = graph or ViewGraph(num_views=len(features))
    graph.attempted.extend(pairs)
    for i, j in pairs:
        start = time.perf_counter()
        index = matcher.match(features[i], features[j])
        middle = time.perf_counter()
        graph.matching_s += middle - start
        graph.match_counts[(i, j)] = len(index)
        if not near_misses and len(index) < two_view.min_inliers:
            continue
        pose = fit_relative_pose(i, j, features[i].keypoints[index[:, 0]],
                                 features[j].keypoints[index[:, 1]], K[i], K[j], sizes[i],
                                 sizes[j], two_view)
        graph.geometry_s += time.perf_counter() - middle
        if pose is not None and pose.accepted(two_view):
            graph.verified[(i, j)] = pose
            graph.near_misses.pop((i, j), None)
        elif pose is not None and near_misses:
            graph.near_misses[(i, j)] = pose
    return graph


def bridging_pairs(graph: ViewGraph, min_inliers: int, max_pairs: int) -> list[Edge]:
    """Attempted, unverified pairs whose views lie in different groups of verified pairs, at
    most ``max_pairs``: near misses with at least ``min_inliers`` inliers first (most inliers
    first), then, when ``min_inliers`` is 0, the pairs no model was fitted to (most matches
    first)."""
    label = component_labels(graph.num_views, list(graph.verified))

    def inliers(pair: Edge) -> int:
        miss = graph.near_misses.get(pair)
        return 0 if miss is None else miss.num_inliers

    candidates = [pair for pair in dict.fromkeys(graph.attempted)
                  if label[pair[0]] != label[pair[1]] and inliers(pair) >= min_inliers]
    candidates.sort(key=lambda pair: (-inliers(pair), -graph.match_counts.get(pair, 0)))
    return sorted(candidates[:max_pairs])


QUARTER_TURNS = (1, 2, 3)
"""Counterclockwise quarter turns :func:`turned_tries` tries (90, 180 and 270 deg)."""


def turned_tries(matcher: FeatureMatcher, features: Sequence[LocalFeatures],
                 turned: Callable[[int, int], LocalFeatures], K: np.ndarray,
                 sizes: Sequence[tuple[int, int]], two_view: TwoViewConfig, graph: ViewGraph,
                 max_pairs: int, min_gain: float) -> list[Edge]:
    """Match pairs between groups of verified views with one image turned, at most
    ``max_pairs`` of them.

    Each pair (i, j) whose views lie in different groups turns the view of the smaller group
    (j on a tie). Its overlap score (:meth:`FeatureMatcher.similarity`) is computed for each of
    :data:`QUARTER_TURNS`; the best turn is a candidate when its score is at least ``min_gain``
    times the upright one. Candidates are tried in order of that gain, skipping a pair whose
    views an earlier try has joined; a verified try is added to ``graph`` with its turn in
    ``graph.turns``. The keypoints of turned features are in pixels of the upright image, so
    the verified pose needs no correction.

    Args:
        matcher: the matcher of ``features``.
        features: N upright extracted images.
        turned: ``turned(view, quarter_turns)`` -> that view's features extracted from its
            turned image; called once per turned view and turn.
        K, sizes, two_view: as for :func:`verify_pairs`.
        graph: the graph to add to.
        max_pairs: pairs matched at most.
        min_gain: smallest ratio of the turned to the upright overlap score.

    Returns:
        The pairs matched, in the order tried.
    """
    label = component_labels(graph.num_views, list(graph.verified))
    if max_pairs <= 0 or len(set(label)) < 2:
        return []
    sizes_of = Counter(label)
    between = []
    for i, j in combinations(range(graph.num_views), 2):
        if label[i] != label[j]:
            view, other = (i, j) if sizes_of[label[i]] < sizes_of[label[j]] else (j, i)
            between.append(((i, j), view, other))
    turned_views = dict.fromkeys(view for _, view, _ in between)
    features_turned = {(view, q): turned(view, q) for view in turned_views
                       for q in QUARTER_TURNS}
    start = time.perf_counter()
    candidates = []
    for pair, view, other in between:
        upright = max(matcher.similarity(features[other], features[view]), 1)
        scores = {q: matcher.similarity(features[other], features_turned[(view, q)])
                  for q in QUARTER_TURNS}
        best = max(scores, key=scores.get)
        gain = scores[best] / upright
        if gain >= min_gain:
            candidates.append((gain, pair, view, best))
    graph.matching_s += time.perf_counter() - start
    tried: list[Edge] = []
    for _, pair, view, quarter_turns in sorted(candidates, key=lambda c: -c[0]):
        if len(tried) >= max_pairs:
            break
        label = component_labels(graph.num_views, list(graph.verified))
        if label[pair[0]] == label[pair[1]]:
            continue
        swapped = list(features)
        swapped[view] = features_turned[(view, quarter_turns)]
        verify_pairs(matcher, swapped, [pair], K, sizes, two_view, graph)
        tried.append(pair)
        if pair in graph.verified:
            graph.turns[pair] = (view, quarter_turns)
    return tried


def _cycle_error_deg(graph: dict[Edge, RelativePose], a: int, b: int, c: int) -> float:
    """Angle of ``R_ca R_bc R_ab`` (a < b < c), 0 for a consistent triangle."""
    R_ab, R_bc, R_ac = graph[(a, b)].R, graph[(b, c)].R, graph[(a, c)].R
    return float(rotation_angle_deg(R_bc @ R_ab, R_ac))


def consistent_edges(verified: dict[Edge, RelativePose], cycle_threshold_deg: float,
                     two_view: Optional[TwoViewConfig] = None) -> list[Edge]:
    """Verified pairs that no rotation cycle contradicts (see the module docstring)."""
    two_view = two_view or TwoViewConfig()
    edges = set(verified)
    nodes = sorted({k for pair in edges for k in pair})
    supported: set[Edge] = set()
    bad_triangles = []
    for a, b, c in combinations(nodes, 3):
        triangle = [(a, b), (b, c), (a, c)]
        if not all(pair in edges for pair in triangle):
            continue
        if _cycle_error_deg(verified, a, b, c) <= cycle_threshold_deg:
            supported.update(triangle)
        else:
            bad_triangles.append(triangle)
    rejected = set()
    for triangle in bad_triangles:
        if any(pair in rejected for pair in triangle):
            continue
        suspects = [pair for pair in triangle if pair not in supported] or triangle
        rejected.add(min(suspects, key=lambda pair: verified[pair].confidence(two_view)))
    return sorted(edges - rejected)
