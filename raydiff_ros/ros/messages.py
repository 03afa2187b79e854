"""Build the node's output messages from the ROS-free pipeline results.

Frames: every published frame name is ``frame_prefix + name`` so the node never republishes a
URDF's own frames. Rig sets name cameras by their optical frames (``raydiff/cam1_optical_frame``);
temporal sets name views by position in the set (``raydiff/view_3``), view 0 = reference.
"""

from typing import Sequence

from geometry_msgs.msg import PoseWithCovarianceStamped
import numpy as np
from rclpy.time import Time

from raydiff_ros.msg import CameraEstimate as CameraEstimateMsg
from raydiff_ros.msg import PoseGraph as PoseGraphMsg
from raydiff_ros.msg import PoseGraphEdge as PoseGraphEdgeMsg
from raydiff_ros.msg import PoseGraphNode as PoseGraphNodeMsg
from raydiff_ros.msg import ViewSetEstimate as ViewSetEstimateMsg
from raydiff_ros.pipeline.estimates import ViewSetEstimate
from raydiff_ros.pipeline.pose_graph import PoseGraph
from raydiff_ros.pipeline.view_sets import ViewSet, ViewSetMode
from raydiff_ros.ros.conversions import matrix_to_pose, transform_stamped

FALLBACK_FRAME = 'camera{index}_optical_frame'
TEMPORAL_VIEW_FRAME = 'view_{position}'
MODES = {ViewSetMode.RIG: ViewSetEstimateMsg.MODE_RIG,
         ViewSetMode.TEMPORAL: ViewSetEstimateMsg.MODE_TEMPORAL,
         ViewSetMode.RELOCALIZATION: ViewSetEstimateMsg.MODE_RELOCALIZATION}


def stamp_msg(stamp_ns: int):
    return Time(nanoseconds=int(stamp_ns)).to_msg()


def output_frames(view_set: ViewSet, prefix: str) -> list[str]:
    """The published frame name of each view (see the module docstring)."""
    if view_set.mode == ViewSetMode.RIG:
        return [prefix + (frame or FALLBACK_FRAME.format(index=index))
                for frame, index in zip(view_set.frame_ids, view_set.camera_indices,
                                        strict=True)]
    return [prefix + TEMPORAL_VIEW_FRAME.format(position=k) for k in range(view_set.num_views)]


def view_set_estimate_msg(estimate: ViewSetEstimate, view_set: ViewSet, frames: Sequence[str],
                          sequence: int, inference_time_s: float,
                          model_name: str) -> ViewSetEstimateMsg:
    message = ViewSetEstimateMsg()
    message.header.stamp = stamp_msg(estimate.stamp_ns)
    message.header.frame_id = frames[0]
    message.mode = MODES[view_set.mode]
    message.scale_source = int(estimate.scale_source)
    message.sequence = sequence
    message.num_samples = estimate.num_samples
    message.inference_time_s = float(inference_time_s)
    message.model_name = model_name
    for camera, frame in zip(estimate.cameras, frames, strict=True):
        item = CameraEstimateMsg()
        item.header.stamp = stamp_msg(camera.stamp_ns)
        item.header.frame_id = frame
        item.camera_index = camera.camera_index
        item.pose = matrix_to_pose(camera.reference_T_camera)
        item.covariance = np.asarray(camera.covariance, dtype=np.float64).ravel().tolist()
        if camera.intrinsics is not None:
            item.intrinsics = [float(v) for v in camera.intrinsics]
        item.intrinsics_estimated = bool(camera.intrinsics_estimated)
        item.pose_source = str(camera.pose_source)
        message.cameras.append(item)
    return message


def transforms_msg(estimate: ViewSetEstimate, frames: Sequence[str]) -> list:
    """TransformStamped ``frames[0]`` -> ``frames[k]`` (reference_T_camera) for k >= 1."""
    return [transform_stamped(camera.reference_T_camera, frames[0], frame,
                              stamp_msg(camera.stamp_ns))
            for camera, frame in zip(estimate.cameras[1:], frames[1:], strict=True)]


def pose_graph_msg(graph: PoseGraph) -> PoseGraphMsg:
    message = PoseGraphMsg()
    message.header.stamp = stamp_msg(graph.stamp_ns)
    message.header.frame_id = graph.frame_id
    for node in graph.nodes:
        item = PoseGraphNodeMsg()
        item.header.stamp = stamp_msg(node.stamp_ns)
        item.header.frame_id = graph.frame_id
        item.robot_id = node.robot_id
        item.key = node.key
        item.pose = matrix_to_pose(node.frame_T_camera)
        message.nodes.append(item)
    for edge in graph.edges:
        item = PoseGraphEdgeMsg()
        item.header.stamp = stamp_msg(graph.stamp_ns)
        item.key_from, item.key_to = edge.key_from, edge.key_to
        item.robot_from, item.robot_to = edge.robot_from, edge.robot_to
        item.type = edge.edge_type
        item.pose = matrix_to_pose(edge.from_T_to)
        item.covariance = np.asarray(edge.covariance, dtype=np.float64).ravel().tolist()
        message.edges.append(item)
    return message


def relocalization_seed_msg(estimate: ViewSetEstimate, view_set: ViewSet,
                            map_frame: str) -> PoseWithCovarianceStamped:
    """The map pose of the query camera, stamped with its keyframe time."""
    result = estimate.relocalization
    message = PoseWithCovarianceStamped()
    message.header.stamp = stamp_msg(view_set.stamps_ns[result.query_index])
    message.header.frame_id = map_frame
    message.pose.pose = matrix_to_pose(result.map_T_query)
    message.pose.covariance = np.asarray(result.covariance, dtype=np.float64).ravel().tolist()
    return message
