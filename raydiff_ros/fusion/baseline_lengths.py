"""Relative baseline lengths of verified pairs from the points they share.

A verified pair fixes the direction of its baseline, not its length. Two pairs that share a
view k and see the same points there give the ratio of their lengths: a point seen by both,
triangulated by each at unit baseline, has depths ``d_e`` and ``d_f`` in camera k, and its one
true depth is ``lambda_e d_e = lambda_f d_f``. The ratios of all such pairs of pairs are solved
for one log-length per edge (least squares, one gauge per group of edges the ratios link).
Without it the lengths come only from how the directions close around triangles (weak when
a triangle is thin) and, where no triangle closes (a chain of pairs), from the anchor alone.
Where two pairs share no points either (neighbouring pairs of a ring of outward cameras often
see disjoint parts of the scene), no single view set fixes their relative length.

* :func:`unit_depths`: depths of matched rays in both cameras of a pair at unit baseline.
* :func:`length_ratios`: ``log(lambda_f / lambda_e)`` for edges sharing a view and points.
* :func:`relative_lengths`: one length per edge, up to a scale per linked group of edges.

Conventions as in :mod:`raydiff_ros.geometry.averaging`: edge ``(i, j)``, i < j, with
``cam_j_R_cam_i`` and unit ``t`` such that ``x_j = R x_i + t`` at unit baseline.
"""

from itertools import combinations
from typing import Mapping, Sequence

import numpy as np
from scipy.spatial import cKDTree

from raydiff_ros.geometry.averaging import connected_components

Edge = tuple[int, int]


def unit_depths(R: np.ndarray, t: np.ndarray, rays_i: np.ndarray,
                rays_j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Depths of matched rays in cameras i and j at unit baseline (least squares of
    ``d_i R f_i + t = d_j f_j``).

    Args:
        R: (3, 3) ``cam_j_R_cam_i``.
        t: (3,) unit translation, ``x_j = R x_i + t``.
        rays_i, rays_j: (M, 3) rays ``K^-1 [u, v, 1]`` of the matched pixels.

    Returns:
        ``(depths_i (M,), depths_j (M,))``: z of the point in camera i and j; NaN where the rays
        are parallel (no depth).
    """
    a = rays_i @ R.T  # (M, 3): R f_i
    b = -rays_j
    # Normal equations of [a b] [d_i d_j]^T = -t, one 2 x 2 system per point.
    aa, ab, bb = (a * a).sum(1), (a * b).sum(1), (b * b).sum(1)
    at, bt = -(a @ t), -(b @ t)
    det = aa * bb - ab * ab
    scale = aa * bb
    ok = det > 1e-12 * np.maximum(scale, 1e-300)
    safe = np.where(ok, det, 1.0)
    d_i = np.where(ok, (bb * at - ab * bt) / safe, np.nan)
    d_j = np.where(ok, (aa * bt - ab * at) / safe, np.nan)
    return d_i * rays_i[:, 2], d_j * rays_j[:, 2]


def length_ratios(points: Mapping[Edge, tuple[np.ndarray, np.ndarray]],
                  depths: Mapping[Edge, tuple[np.ndarray, np.ndarray]],
                  tolerance_px: float = 1.0, min_shared: int = 10
                  ) -> dict[tuple[Edge, Edge], tuple[float, int]]:
    """Log length ratios of edges that share a view and at least ``min_shared`` points there.

    Args:
        points: per edge (i, j), its inlier pixels in view i and in view j, each (M, 2).
        depths: per edge, the inliers' unit-baseline depths in view i and j, each (M,).
        tolerance_px: two pairs' keypoints within this distance in the shared view are the
            same point (different matchers detect the same corner a little apart).
        min_shared: fewest shared points that give a ratio.

    Returns:
        ``{(e, f): (log(lambda_f / lambda_e), shared points)}`` for e < f.
    """
    seen: dict[int, list] = {}  # view -> [(edge, pixels, depths)]
    for edge, (pixels_i, pixels_j) in points.items():
        depth_i, depth_j = depths[edge]
        for view, pixels, depth in ((edge[0], pixels_i, depth_i), (edge[1], pixels_j, depth_j)):
            good = np.isfinite(depth) & (depth > 0)
            seen.setdefault(view, []).append((edge, pixels[good], depth[good]))
    ratios: dict[tuple[Edge, Edge], tuple[float, int]] = {}
    for entries in seen.values():
        for (e, pixels_e, depth_e), (f, pixels_f, depth_f) in combinations(entries, 2):
            if len(pixels_e) < min_shared or len(pixels_f) < min_shared:
                continue
            distance, nearest = cKDTree(pixels_f).query(pixels_e,
                                                        distance_upper_bound=tolerance_px)
            shared = np.isfinite(distance)
            if shared.sum() < min_shared:
                continue
            # One true depth: lambda_e d_e = lambda_f d_f, so lambda_f / lambda_e = d_e / d_f.
            log_ratio = float(np.median(np.log(depth_e[shared] / depth_f[nearest[shared]])))
            key, value = ((e, f), log_ratio) if e < f else ((f, e), -log_ratio)
            ratios[key] = (value, int(shared.sum()))
    return ratios


def relative_lengths(edges: Sequence[Edge],
                     ratios: Mapping[tuple[Edge, Edge], tuple[float, int]]
                     ) -> list[dict[Edge, float]]:
    """Lengths of the edges that ratios link, one dict per linked group (at least two edges),
    each with geometric mean 1 (its scale is free).

    Args:
        edges: E edges.
        ratios: from :func:`length_ratios`; weights are the square roots of the shared counts.
    """
    index = {edge: k for k, edge in enumerate(edges)}
    links = [(index[e], index[f], value, count) for (e, f), (value, count) in ratios.items()
             if e in index and f in index]
    groups = []
    for group in connected_components(len(edges), [(a, b) for a, b, _, _ in links]):
        if len(group) < 2:
            continue
        column = {k: n for n, k in enumerate(sorted(group))}
        rows, targets = [], []
        for a, b, value, count in links:
            if a in column:
                row = np.zeros(len(column))
                row[column[b]], row[column[a]] = 1.0, -1.0
                weight = np.sqrt(count)
                rows.append(weight * row)
                targets.append(weight * value)
        rows.append(np.ones(len(column)))  # gauge: the log-lengths sum to zero
        targets.append(0.0)
        log_lengths = np.linalg.lstsq(np.array(rows), np.array(targets), rcond=None)[0]
        groups.append({edges[k]: float(np.exp(log_lengths[column[k]])) for k in column})
    return groups
