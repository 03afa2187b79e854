"""Conversions between 4x4 rigid transforms (numpy) and geometry_msgs types.

Every 4x4 matrix here is ``target_T_source``: it maps points in ``source`` coordinates into
``target`` coordinates, and equals the pose of ``source`` expressed in ``target``.
Quaternions are (x, y, z, w), as in ROS.
"""

from geometry_msgs.msg import Pose, Transform, TransformStamped
import numpy as np
from scipy.spatial.transform import Rotation

ROTATION_TOLERANCE = 1e-6


def _check_rigid(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.shape != (4, 4):
        raise ValueError(f'expected a 4x4 transform, got shape {matrix.shape}')
    if not np.all(np.isfinite(matrix)):
        raise ValueError('transform contains NaN or infinite values')
    rotation = matrix[:3, :3]
    if (np.abs(rotation @ rotation.T - np.eye(3)).max() > ROTATION_TOLERANCE
            or np.linalg.det(rotation) < 0.0):
        raise ValueError('transform rotation block is not a proper rotation')
    return matrix


def matrix_to_pose(target_T_source: np.ndarray) -> Pose:
    """Return the Pose of ``source`` in ``target`` from a 4x4 ``target_T_source``."""
    matrix = _check_rigid(target_T_source)
    x, y, z, w = Rotation.from_matrix(matrix[:3, :3]).as_quat()
    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = (float(v) for v in matrix[:3, 3])
    pose.orientation.x, pose.orientation.y = float(x), float(y)
    pose.orientation.z, pose.orientation.w = float(z), float(w)
    return pose


def pose_to_matrix(pose: Pose) -> np.ndarray:
    """Return the 4x4 ``target_T_source`` of a Pose of ``source`` in ``target``."""
    q = pose.orientation
    matrix = np.eye(4)
    matrix[:3, :3] = Rotation.from_quat([q.x, q.y, q.z, q.w]).as_matrix()
    matrix[:3, 3] = (pose.position.x, pose.position.y, pose.position.z)
    return matrix


def matrix_to_transform(target_T_source: np.ndarray) -> Transform:
    """Return the Transform message of a 4x4 ``target_T_source``."""
    pose = matrix_to_pose(target_T_source)
    transform = Transform()
    transform.translation.x = pose.position.x
    transform.translation.y = pose.position.y
    transform.translation.z = pose.position.z
    transform.rotation = pose.orientation
    return transform


def transform_stamped(target_T_source: np.ndarray, target_frame: str, source_frame: str,
                      stamp) -> TransformStamped:
    """Return a TransformStamped with header.frame_id = target, child_frame_id = source.

    This is the tf2 meaning: the transform gives the pose of the child frame in the parent.
    """
    message = TransformStamped()
    message.header.stamp = stamp
    message.header.frame_id = target_frame
    message.child_frame_id = source_frame
    message.transform = matrix_to_transform(target_T_source)
    return message


def transform_to_matrix(transform: Transform) -> np.ndarray:
    """Return the 4x4 ``parent_T_child`` of a Transform message."""
    pose = Pose()
    pose.position.x = transform.translation.x
    pose.position.y = transform.translation.y
    pose.position.z = transform.translation.z
    pose.orientation = transform.rotation
    return pose_to_matrix(pose)
