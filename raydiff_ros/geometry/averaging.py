"""Motion averaging over a view graph: spanning trees, robust rotation averaging, centres.

Conventions. N cameras with world-to-camera rotations ``R[k] = cam_k_R_world`` (shape (N, 3, 3))
and centres ``C[k]`` (N, 3) in the world frame. An edge ``(i, j)`` (i != j) measures
``R_ij = cam_j_R_cam_i = R[j] @ R[i].T`` and the unit direction ``t_ij`` of
``cam_j_T_cam_i``'s translation, ``t_ij ~ R[j] @ (C[i] - C[j])``.

* :func:`connected_components`, :func:`component_labels`: which cameras edges link.
* :func:`maximum_spanning_tree`: heaviest tree from a root (Prim), for chaining.
* :func:`chain_rotations`: rotations propagated along such a tree.
* :func:`average_rotations`: iteratively reweighted Gauss-Newton on SO(3) with Cauchy weights
  (the residual of edge (i, j) is ``log(R_ij^T R[j] R[i]^T)``); camera ``fixed`` is held.
* :func:`solve_centres`: linear least squares for the centres and one positive length per edge,
  ``C[i] - C[j] = lambda_ij R[j]^T t_ij``, with a soft anchor to given centre differences (the
  prior's, or any guess) that fixes the scale and places cameras no edge constrains.
"""

import heapq
from typing import Mapping, Optional, Sequence

import numpy as np

from raydiff_ros.geometry.transforms import rotation_angle_deg, rotation_exp, rotation_log

Edge = tuple[int, int]


def maximum_spanning_tree(num: int, weights: Mapping[Edge, float],
                          root: int = 0) -> list[Edge]:
    """Edges (parent, child) of a maximum-weight spanning tree grown from ``root`` (Prim), in
    the order the children are added; cameras ``root`` cannot reach are left out.

    Args:
        num: number of cameras.
        weights: weight of each undirected edge (i, j).
        root: the first camera.
    """
    neighbours: dict[int, list] = {k: [] for k in range(num)}
    for (i, j), weight in weights.items():
        neighbours[i].append((weight, i, j))
        neighbours[j].append((weight, j, i))
    placed, tree = {root}, []
    heap = [(-w, a, b) for w, a, b in neighbours[root]]
    heapq.heapify(heap)
    while heap:
        _, parent, child = heapq.heappop(heap)
        if child in placed:
            continue
        placed.add(child)
        tree.append((parent, child))
        for weight, a, b in neighbours[child]:
            if b not in placed:
                heapq.heappush(heap, (-weight, a, b))
    return tree


def connected_components(num: int, edges: Sequence[Edge]) -> list[list[int]]:
    """Connected components (sorted index lists, by lowest index) of a graph on 0..num-1."""
    parent = list(range(num))

    def root(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for a, b in edges:
        parent[max(root(a), root(b))] = min(root(a), root(b))
    members: dict[int, list[int]] = {}
    for k in range(num):
        members.setdefault(root(k), []).append(k)
    return [members[key] for key in sorted(members)]


def component_labels(num: int, edges: Sequence[Edge]) -> list[int]:
    """(N,) label of each node: the lowest index of its connected component."""
    labels = [0] * num
    for members in connected_components(num, edges):
        for k in members:
            labels[k] = members[0]
    return labels


def _oriented(relative: Mapping[Edge, np.ndarray], parent: int, child: int) -> np.ndarray:
    """``cam_child_R_cam_parent`` from the measurement stored under (min, max)."""
    if (parent, child) in relative:
        return relative[(parent, child)]
    return relative[(child, parent)].T


def chain_rotations(initial: np.ndarray, tree: Sequence[Edge],
                    relative: Mapping[Edge, np.ndarray]) -> np.ndarray:
    """(N, 3, 3) rotations: ``initial`` with each tree child set to ``R_pc @ R[parent]``.

    Args:
        initial: (N, 3, 3) rotations of the root and of the cameras off the tree.
        tree: (parent, child) edges in an order where each parent is placed first.
        relative: ``cam_j_R_cam_i`` per measured edge (i, j).
    """
    rotations = np.array(initial, dtype=np.float64)
    for parent, child in tree:
        rotations[child] = _oriented(relative, parent, child) @ rotations[parent]
    return rotations


def rotation_residuals_deg(rotations: np.ndarray, edges: Sequence[Edge],
                           relative: np.ndarray) -> np.ndarray:
    """(E,) angle between each measured ``R_ij`` and ``R[j] R[i]^T``, in degrees."""
    if not len(edges):
        return np.zeros(0)
    first = np.array([i for i, _ in edges])
    second = np.array([j for _, j in edges])
    return rotation_angle_deg(np.asarray(relative),
                              rotations[second] @ np.swapaxes(rotations[first], -1, -2))


def average_rotations(initial: np.ndarray, edges: Sequence[Edge], relative: np.ndarray,
                      weights: np.ndarray, fixed: int = 0, robust_scale_deg: float = 5.0,
                      iterations: int = 20, tolerance_rad: float = 1e-9) -> np.ndarray:
    """Robust least-squares rotations of N cameras from relative measurements.

    Args:
        initial: (N, 3, 3) starting rotations (e.g. :func:`chain_rotations`).
        edges: E pairs (i, j).
        relative: (E, 3, 3) measured ``cam_j_R_cam_i``.
        weights: (E,) non-negative confidence of each measurement.
        fixed: camera whose rotation is held (the gauge).
        robust_scale_deg: Cauchy scale: an edge off by this much counts half.
        iterations: Gauss-Newton steps at most.
        tolerance_rad: stop when the largest update is below this.

    Returns:
        (N, 3, 3) rotations. Cameras no edge touches keep their initial rotation.
    """
    rotations = np.array(initial, dtype=np.float64)
    num = rotations.shape[0]
    relative = np.asarray(relative, dtype=np.float64).reshape(-1, 3, 3)
    weights = np.asarray(weights, dtype=np.float64).reshape(-1)
    if len(edges) == 0:
        return rotations
    scale = np.deg2rad(robust_scale_deg)
    free = [k for k in range(num) if k != fixed]
    column = {k: 3 * n for n, k in enumerate(free)}
    for _ in range(iterations):
        hessian = np.zeros((3 * len(free), 3 * len(free)))
        gradient = np.zeros(3 * len(free))
        for (i, j), measured, weight in zip(edges, relative, weights, strict=True):
            error = rotation_log(measured.T @ rotations[j] @ rotations[i].T)
            robust = weight / (1.0 + (np.linalg.norm(error) / scale) ** 2)
            blocks = {i: -rotations[i], j: rotations[i]}
            for a, block_a in blocks.items():
                if a == fixed:
                    continue
                ca = column[a]
                gradient[ca:ca + 3] += robust * block_a.T @ error
                for b, block_b in blocks.items():
                    if b != fixed:
                        cb = column[b]
                        hessian[ca:ca + 3, cb:cb + 3] += robust * block_a.T @ block_b
        hessian += 1e-9 * np.eye(len(gradient))
        step = -np.linalg.solve(hessian, gradient)
        for k in free:
            rotations[k] = rotations[k] @ rotation_exp(step[column[k]:column[k] + 3])
        if np.max(np.abs(step)) < tolerance_rad:
            break
    return rotations


def solve_centres(rotations: np.ndarray, edges: Sequence[Edge], translations: np.ndarray,
                  weights: np.ndarray, anchor: np.ndarray, anchor_weight: float,
                  fixed: int = 0, known_lengths: Optional[Mapping[int, float]] = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Camera centres from edge directions, anchored softly to given centre differences.

    Minimises ``sum_e w_e |C[i] - C[j] - lambda_e d_e|^2 + a sum_{k<l} |(C[k] - C[l]) -
    (A[k] - A[l])|^2`` over the centres and the edge lengths ``lambda_e``, where ``d_e =
    R[j]^T t_ij`` and ``C[fixed] = A[fixed]``.

    Args:
        rotations: (N, 3, 3) world-to-camera rotations.
        edges: E pairs (i, j).
        translations: (E, 3) unit translations of ``cam_j_T_cam_i``.
        weights: (E,) confidence of each direction.
        anchor: (N, 3) centres whose differences anchor scale and unconstrained cameras.
        anchor_weight: weight ``a`` of the anchor (> 0).
        fixed: camera placed exactly at its anchor.
        known_lengths: edge index -> a length held fixed instead of solved for (e.g. for an
            edge whose free length came out negative: the direction's sign is then enforced).

    Returns:
        ``(centres (N, 3), lengths (E,))``; a negative length marks a direction the solution
        contradicts.
    """
    anchor = np.asarray(anchor, dtype=np.float64)
    known_lengths = dict(known_lengths or {})
    num = anchor.shape[0]
    num_edges = len(edges)
    free = [k for k in range(num) if k != fixed]
    column = {k: 3 * n for n, k in enumerate(free)}
    size = 3 * len(free) + num_edges
    rows, targets = [], []

    def difference_row(i: int, j: int, weight: float) -> np.ndarray:
        row = np.zeros((3, size))
        if i != fixed:
            row[:, column[i]:column[i] + 3] = weight * np.eye(3)
        if j != fixed:
            row[:, column[j]:column[j] + 3] = -weight * np.eye(3)
        return row

    def fixed_offset(i: int, j: int, weight: float) -> np.ndarray:
        """Contribution of the fixed camera's known centre, moved to the right-hand side."""
        offset = np.zeros(3)
        if i == fixed:
            offset -= weight * anchor[fixed]
        if j == fixed:
            offset += weight * anchor[fixed]
        return offset

    for index, ((i, j), translation, weight) in enumerate(
            zip(edges, np.asarray(translations, dtype=np.float64), weights, strict=True)):
        root = np.sqrt(max(float(weight), 0.0))
        row = difference_row(i, j, root)
        direction = rotations[j].T @ translation
        target = fixed_offset(i, j, root)
        if index in known_lengths:
            target = target + root * known_lengths[index] * direction
        else:
            row[:, 3 * len(free) + index] = -root * direction
        rows.append(row)
        targets.append(target)
    root = np.sqrt(anchor_weight)
    for k in range(num):
        for m in range(k + 1, num):
            rows.append(difference_row(k, m, root))
            targets.append(root * (anchor[k] - anchor[m]) + fixed_offset(k, m, root))
    solution = np.linalg.lstsq(np.concatenate(rows), np.concatenate(targets), rcond=None)[0]
    centres = anchor.copy()
    for k in free:
        centres[k] = solution[column[k]:column[k] + 3]
    lengths = solution[3 * len(free):].copy()
    for index, length in known_lengths.items():
        lengths[index] = length
    return centres, lengths


def direction_errors_deg(rotations: np.ndarray, centres: np.ndarray, edges: Sequence[Edge],
                         translations: np.ndarray) -> np.ndarray:
    """(E,) angle between each measured direction and ``R[j] (C[i] - C[j])``, in degrees
    (180 where the two centres coincide)."""
    errors = []
    for (i, j), translation in zip(edges, translations, strict=True):
        predicted = rotations[j] @ (centres[i] - centres[j])
        norm = np.linalg.norm(predicted)
        if norm < 1e-12:
            errors.append(180.0)
            continue
        cosine = np.clip(predicted @ translation / norm, -1.0, 1.0)
        errors.append(float(np.degrees(np.arccos(cosine))))
    return np.array(errors)

