"""Inputs of the estimator node: subscriptions, decoding, keyframe buffering, input errors.

Camera i of ``num_cameras`` (remap them): ``image_<i>`` (sensor_msgs/Image) or
``image_<i>/compressed`` (sensor_msgs/CompressedImage) per ``image_transport``, and
``camera_info_<i>`` (sensor_msgs/CameraInfo), both with the ``image_qos`` profile. Also
``~/lost`` (std_msgs/Bool: true asks for a relocalization seed; so does the service
``~/request_relocalization``, std_srvs/Trigger) and, when ``map_pose_topic`` is set, that
topic (geometry_msgs/PoseStamped: ``map_T_camera`` of camera ``map_pose_camera``'s optical
frame in ``map_frame``).

Callbacks run in the executor and stay cheap: view the image's pixels in their own channel
order (``raw_image_view``: the message's buffer itself, no copy, for rgb8/bgr8/rgba8/bgra8;
compressed images are decoded once, ``compressed_image_view``), convert CameraInfo to
``PinholeIntrinsics``, and offer the frame to the ``KeyframeBuffer`` with the camera's
intrinsics and the nearest map pose in time (a camera's first valid CameraInfo is also given
to its keyframes stored without intrinsics: image and info topics are not ordered with one
another). The buffer decides on a downscaled grey image and
converts to RGB only the frames it keeps, after downscaling them, so a rejected frame costs
one area downscale to ``analysis_max_side`` (measured: 0.4 ms at 640 x 480, 1.1 ms at
1280 x 720 on one core, against 1.9 and 5.1 ms when every frame was copied and decoded to RGB
at full size). The one copy left is rclpy's own, of the message into Python. Bad input is
counted per kind and camera (``errors['<kind>_<i>']``), noted as the node's last problem and
logged at most every ``LOG_THROTTLE_S`` seconds; it never raises.

Queues: images and camera info use ``IMAGE_RELIABLE_QOS`` or ``SENSOR_QOS`` (``image_qos``),
both keeping the last 5 messages per camera (why: ``raydiff_ros.ros.qos``).
"""

from collections import deque
import threading
import time
from typing import Optional, Union

from geometry_msgs.msg import PoseStamped
import numpy as np
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Bool
from std_srvs.srv import Trigger

from raydiff_ros.pipeline.camera_info import (
    CameraInfoConfig,
    CameraInfoError,
    PinholeIntrinsics,
    intrinsics_from_camera_info,
)
from raydiff_ros.pipeline.image_decoding import (
    ImageDecodingError,
    compressed_image_view,
    raw_image_view,
)
from raydiff_ros.pipeline.keyframes import KeyframeBuffer, KeyframeError
from raydiff_ros.ros.conversions import pose_to_matrix
from raydiff_ros.ros.node_diagnostics import LOG_THROTTLE_S, NodeDiagnostics
from raydiff_ros.ros.parameters import parameter_reader
from raydiff_ros.ros.qos import IMAGE_RELIABLE_QOS, SENSOR_QOS

#: Map poses kept to attach the nearest one in time to a keyframe.
MAP_POSE_HISTORY = 200


class CameraInputs:
    """The node's input subscriptions and what they gathered.

    Attributes:
        buffer: the keyframe buffer frames go to (set by ``configure``).
        intrinsics: the latest valid intrinsics per camera index.
        relocalization_requested: set by ``~/lost`` (and the node's service), cleared by the
            node once a relocalization set is formed.
        errors: bad inputs per ``<kind>_<camera index>``.
        images_received, callback_cpu_s: image callbacks run and their thread CPU time, s.
    """

    def __init__(self, node: Node, lock: threading.Lock, diagnostics: NodeDiagnostics) -> None:
        self._node = node
        self._param = parameter_reader(node)
        self._lock = lock
        self._diagnostics = diagnostics
        self._group = MutuallyExclusiveCallbackGroup()
        self._subscriptions: list = []
        self._camera_info_config = CameraInfoConfig()
        self._map_poses: deque = deque(maxlen=MAP_POSE_HISTORY)
        self.buffer: Optional[KeyframeBuffer] = None
        self.intrinsics: dict[int, PinholeIntrinsics] = {}
        self.relocalization_requested = False
        self.errors: dict[str, int] = {}
        self.images_received = 0
        self.callback_cpu_s = 0.0

    def configure(self, buffer: KeyframeBuffer, camera_info_config: CameraInfoConfig) -> None:
        """Buffer frames in ``buffer``; offer the ``~/request_relocalization`` service."""
        self.buffer = buffer
        self._camera_info_config = camera_info_config
        self._service = self._node.create_service(
            Trigger, '~/request_relocalization', self._on_request_relocalization
        )

    def subscribe(self) -> None:
        """Subscribe to every camera, ``~/lost`` and the map pose topic (if set)."""
        qos = SENSOR_QOS if self._param('image_qos') == 'sensor_data' else IMAGE_RELIABLE_QOS
        compressed = self._param('image_transport') == 'compressed'
        subscribe = self._node.create_subscription
        for index in range(self._param('num_cameras')):
            topic = f'image_{index}' + ('/compressed' if compressed else '')
            image_type = CompressedImage if compressed else Image
            self._subscriptions.append(
                subscribe(
                    image_type,
                    topic,
                    lambda msg, i=index: self._on_image(i, msg),
                    qos,
                    callback_group=self._group,
                )
            )
            self._subscriptions.append(
                subscribe(
                    CameraInfo,
                    f'camera_info_{index}',
                    lambda msg, i=index: self._on_camera_info(i, msg),
                    qos,
                    callback_group=self._group,
                )
            )
        self._subscriptions.append(
            subscribe(Bool, '~/lost', self._on_lost, 10, callback_group=self._group)
        )
        if self._param('map_pose_topic'):
            self._subscriptions.append(
                subscribe(
                    PoseStamped,
                    self._param('map_pose_topic'),
                    self._on_map_pose,
                    50,
                    callback_group=self._group,
                )
            )

    def unsubscribe(self) -> None:
        for subscription in self._subscriptions:
            self._node.destroy_subscription(subscription)
        self._subscriptions = []

    def _problem(self, kind: str, camera: int, error: Exception) -> None:
        key = f'{kind}_{camera}'
        self.errors[key] = self.errors.get(key, 0) + 1
        text = self._diagnostics.note_problem(f'camera {camera} {kind}: {error}')
        self._node.get_logger().warning(text, throttle_duration_sec=LOG_THROTTLE_S)

    def _on_camera_info(self, index: int, msg: CameraInfo) -> None:
        try:
            intrinsics = intrinsics_from_camera_info(
                list(msg.k),
                msg.width,
                msg.height,
                list(msg.p),
                list(msg.d),
                msg.distortion_model,
                self._camera_info_config,
            )
        except CameraInfoError as error:
            self.intrinsics.pop(index, None)
            self._problem('camera_info', index, error)
            return
        first = index not in self.intrinsics
        self.intrinsics[index] = intrinsics
        if first and self.buffer is not None:
            # images of this camera that came before its first CameraInfo
            with self._lock:
                self.buffer.attach_intrinsics(index, intrinsics)

    def _on_image(self, index: int, msg: Union[Image, CompressedImage]) -> None:
        start = time.thread_time()
        try:
            self._process_image(index, msg)
        finally:
            self.callback_cpu_s += time.thread_time() - start
            self.images_received += 1

    def _process_image(self, index: int, msg: Union[Image, CompressedImage]) -> None:
        try:
            if isinstance(msg, CompressedImage):
                image = compressed_image_view(msg.format, msg.data)
            else:
                image = raw_image_view(
                    msg.encoding,
                    msg.height,
                    msg.width,
                    msg.step,
                    bool(msg.is_bigendian),
                    msg.data,  # viewed, not copied: the view is used before this returns
                )
        except ImageDecodingError as error:
            self._problem('image', index, error)
            return
        stamp_ns = Time.from_msg(msg.header.stamp).nanoseconds
        try:
            with self._lock:
                self.buffer.offer(
                    index,
                    stamp_ns,
                    image,
                    msg.header.frame_id,
                    self.intrinsics.get(index),
                    self._map_pose_at(index, stamp_ns),
                )
        except (KeyframeError, CameraInfoError) as error:
            self._problem('image', index, error)

    def _on_map_pose(self, msg: PoseStamped) -> None:
        map_frame = self._param('map_frame')
        if msg.header.frame_id and msg.header.frame_id != map_frame:
            error = ValueError(f'pose in {msg.header.frame_id!r}, expected {map_frame!r}')
            self._problem('map_pose', self._param('map_pose_camera'), error)
            return
        stamp_ns = Time.from_msg(msg.header.stamp).nanoseconds
        map_T_camera = pose_to_matrix(msg.pose)
        self._map_poses.append((stamp_ns, map_T_camera))
        with self._lock:
            self.buffer.set_map_pose(self._param('map_pose_camera'), stamp_ns, map_T_camera)

    def _map_pose_at(self, index: int, stamp_ns: int) -> Optional[np.ndarray]:
        """The (4, 4) ``map_T_camera`` nearest to ``stamp_ns`` if close enough, else None."""
        if index != self._param('map_pose_camera') or not self._map_poses:
            return None
        max_age_ns = self._param('map_pose_max_age_s') * 1e9
        stamp, pose = min(self._map_poses, key=lambda item: abs(item[0] - stamp_ns))
        return pose if abs(stamp - stamp_ns) <= max_age_ns else None

    def _on_lost(self, msg: Bool) -> None:
        if msg.data:
            self.relocalization_requested = True

    def relocalization_due(self) -> bool:
        """Whether a seed was asked for and the newest keyframe of the localized camera has no
        map pose (it is the query of a relocalization set)."""
        if not self.relocalization_requested:
            return False
        latest = self.buffer.latest(self._param('map_pose_camera'))
        return latest is not None and latest.map_T_camera is None

    def _on_request_relocalization(
        self, request: Trigger.Request, response: Trigger.Response
    ) -> Trigger.Response:
        self.relocalization_requested = True
        response.success = True
        response.message = 'relocalization requested: the next covering view set is estimated'
        return response
