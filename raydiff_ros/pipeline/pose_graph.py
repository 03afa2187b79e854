"""ROS-free description of the pose-graph output (the node converts it to ``msg/PoseGraph``).

Field meanings follow ``pose_graph_tools_msgs`` (MIT-SPARK, ROS 2 branch), whose layout
``msg/PoseGraph*.msg`` copies:

* one **node** per view of an estimated view set: ``robot_id = robot_id_offset + camera
  index``, ``key`` = the keyframe stamp in nanoseconds (``pose_graph_key_mode = stamp_ns``,
  what Hydra's external loop-closure receiver matches) or the keyframe's running index
  (``index``), ``pose`` = ``frame_T_camera`` in the graph frame (the reference camera's optical
  frame, or the map for relocalization);
* one **edge** per constraint, ``from_T_to = inv(frame_T_from) @ frame_T_to`` (the pose of
  the ``to`` camera in the ``from`` camera's frame, what Kimera-PGMO turns into
  ``BetweenFactor(from, to, from_T_to)``), type ``LOOPCLOSE``, with a 6x6 covariance in ROS order
  (x, y, z, rx, ry, rz), translation in the ``from`` frame, rotation vectors about the ``from``
  frame's axes, computed from the pose samples (``uncertainty.edge_statistics``).

Edges: ``star`` (default) links the reference view 0 to every other view (N - 1 edges, the
independent information of one estimate); ``all_pairs`` links every pair i < j (redundant and
correlated: a back-end that treats them as independent becomes over-confident).
"""

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from raydiff_ros.geometry.transforms import check_transforms, relative_transforms
from raydiff_ros.parameter_fields import check_fields, parameter
from raydiff_ros.pipeline.uncertainty import (
    UncertaintyConfig,
    edge_statistics,
    pose_statistics,
)

EDGE_TYPE_ODOM = 0
EDGE_TYPE_LOOPCLOSE = 1
"""Edge types, as the constants of ``PoseGraphEdge.msg``."""

KEY_MODES = ('stamp_ns', 'index')
EDGE_MODES = ('star', 'all_pairs')


class PoseGraphError(ValueError):
    """Invalid pose-graph configuration or inputs (shapes, duplicate keys)."""


@dataclass(frozen=True)
class PoseGraphConfig:
    """Pose-graph parameters (ROS parameters of the same names).

    Each field's meaning, range and default are in its ``parameter(...)`` declaration.
    ``robot_id_offset`` lets several robots feed one back-end.
    """

    pose_graph_key_mode: str = parameter(
        'stamp_ns',
        'node key: stamp in ns (Hydra) or keyframe running index (Kimera-PGMO)',
        choices=KEY_MODES,
    )
    pose_graph_edges: str = parameter(
        'star', 'reference-to-each edges, or every pair (correlated)', choices=EDGE_MODES
    )
    robot_id_offset: int = parameter(0, 'robot_id = offset + camera index', minimum=0)

    def __post_init__(self) -> None:
        check_fields(self, PoseGraphError)


@dataclass(frozen=True, eq=False)
class PoseGraphNode:
    """One keyframe.

    Attributes:
        key: stamp in ns or keyframe index (``pose_graph_key_mode``), >= 0 (uint64).
        robot_id: ``robot_id_offset`` + camera index (int32).
        stamp_ns: the keyframe's stamp (for the node header).
        frame_T_camera: (4, 4) pose of the camera's optical frame in the graph frame.
    """

    key: int
    robot_id: int
    stamp_ns: int
    frame_T_camera: np.ndarray  # noqa: N815 (frame names)


@dataclass(frozen=True, eq=False)
class PoseGraphEdge:
    """One relative-pose constraint between two nodes.

    Attributes:
        key_from, key_to: node keys.
        robot_from, robot_to: node robot ids.
        edge_type: ``EDGE_TYPE_LOOPCLOSE`` for inter-camera / relocalization constraints.
        from_T_to: (4, 4) pose of the ``to`` camera in the ``from`` camera's frame.
        covariance: (6, 6) ROS order, in the ``from`` frame.
    """

    key_from: int
    key_to: int
    robot_from: int
    robot_to: int
    edge_type: int
    from_T_to: np.ndarray  # noqa: N815 (frame names)
    covariance: np.ndarray


@dataclass(frozen=True, eq=False)
class PoseGraph:
    """Nodes and edges of one estimate.

    Attributes:
        frame_id: the frame node poses are expressed in.
        stamp_ns: the newest stamp of the view set.
        nodes: one per view, in view order.
        edges: see ``PoseGraphConfig.pose_graph_edges``.
    """

    frame_id: str
    stamp_ns: int
    nodes: tuple[PoseGraphNode, ...]
    edges: tuple[PoseGraphEdge, ...]


def node_key(stamp_ns: int, keyframe_id: int, key_mode: str) -> int:
    """The key of a node: the stamp in ns or the keyframe index, as a uint64-range int."""
    if key_mode not in KEY_MODES:
        raise PoseGraphError(f'unknown key mode {key_mode!r}')
    key = int(stamp_ns) if key_mode == 'stamp_ns' else int(keyframe_id)
    if key < 0:
        raise PoseGraphError(f'pose-graph keys must be >= 0 (uint64), got {key}')
    return key


def edge_pairs(num_views: int, edge_mode: str) -> list[tuple[int, int]]:
    """View-index pairs (from, to) of the edges of ``num_views`` views."""
    if edge_mode == 'star':
        return [(0, j) for j in range(1, num_views)]
    if edge_mode == 'all_pairs':
        return [(i, j) for i in range(num_views) for j in range(i + 1, num_views)]
    raise PoseGraphError(f'unknown edge mode {edge_mode!r}')


def build_pose_graph(
    frame_T_cameras: np.ndarray,
    pose_samples: Optional[np.ndarray],
    stamps_ns: Sequence[int],
    camera_indices: Sequence[int],
    keyframe_ids: Sequence[int],
    frame_id: str,
    config: PoseGraphConfig = PoseGraphConfig(),
    uncertainty: Optional[UncertaintyConfig] = None,
    scale_known: bool = True,
) -> PoseGraph:
    """The pose graph of one view-set estimate.

    Args:
        frame_T_cameras: (N, 4, 4) mean pose of each view in the graph frame ``frame_id``.
        pose_samples: (S, N, 4, 4) pose samples in any common frame, in the same unit as
            ``frame_T_cameras`` (for edge covariances); None gives floor covariances.
        stamps_ns: N keyframe stamps.
        camera_indices: N camera indices.
        keyframe_ids: N keyframe running indices.
        frame_id: the frame of ``frame_T_cameras``.
        config: key and edge modes.
        uncertainty: covariance floors and inflation for the edges (default
            ``UncertaintyConfig()``).
        scale_known: whether translations are metric (else edges get the unknown-scale
            inflation).

    Raises:
        PoseGraphError: inconsistent lengths or two nodes with the same (robot_id, key).
    """
    uncertainty = uncertainty or UncertaintyConfig()
    poses = check_transforms(frame_T_cameras, 'frame_T_cameras')
    num = poses.shape[0]
    if poses.ndim != 3 or not len(stamps_ns) == len(camera_indices) == len(keyframe_ids) == num:
        raise PoseGraphError(
            f'expected N poses (N, 4, 4) and N stamps, cameras and keyframe ids; got '
            f'{poses.shape}, {len(stamps_ns)}, {len(camera_indices)}, {len(keyframe_ids)}'
        )
    if pose_samples is not None:
        pose_samples = check_transforms(pose_samples, 'pose_samples')
        if pose_samples.ndim != 4 or pose_samples.shape[1] != num:
            raise PoseGraphError(
                f'pose_samples must have shape (S, {num}, 4, 4), got {pose_samples.shape}'
            )

    nodes = tuple(
        PoseGraphNode(
            key=node_key(stamps_ns[i], keyframe_ids[i], config.pose_graph_key_mode),
            robot_id=config.robot_id_offset + int(camera_indices[i]),
            stamp_ns=int(stamps_ns[i]),
            frame_T_camera=poses[i],
        )
        for i in range(num)
    )
    identities = [(n.robot_id, n.key) for n in nodes]
    if len(set(identities)) != len(identities):
        raise PoseGraphError(
            f'duplicate (robot_id, key) among nodes {identities}; use pose_graph_key_mode '
            '"index" or distinct cameras'
        )

    edges = []
    for i, j in edge_pairs(num, config.pose_graph_edges):
        from_T_to = relative_transforms(poses[i], poses[j])
        if pose_samples is None:
            statistics = pose_statistics(from_T_to[None], uncertainty, scale_known)
        else:
            statistics = edge_statistics(pose_samples, i, j, uncertainty, scale_known)
        edges.append(
            PoseGraphEdge(
                key_from=nodes[i].key,
                key_to=nodes[j].key,
                robot_from=nodes[i].robot_id,
                robot_to=nodes[j].robot_id,
                edge_type=EDGE_TYPE_LOOPCLOSE,
                from_T_to=from_T_to,
                covariance=statistics.covariance,
            )
        )
    return PoseGraph(
        frame_id=str(frame_id),
        stamp_ns=max(int(s) for s in stamps_ns),
        nodes=nodes,
        edges=tuple(edges),
    )

