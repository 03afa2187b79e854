"""The node's input handling in-process: decoding, buffering, map poses, bad input, requests.

The callbacks of ``CameraInputs`` are called directly on a configured node (a test-double
estimator), so transports and services the DDS tests do not cover are checked quickly; likewise
the diagnostics of published estimates.
"""

import cv2
import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy', reason='rclpy is not installed (run: make test)')

from diagnostic_msgs.msg import DiagnosticStatus  # noqa: E402
from geometry_msgs.msg import PoseStamped  # noqa: E402
from node_scenarios import (  # noqa: E402
    estimate_with_sources,
    image_for,
    intrinsics,
    true_world_T_camera,
)
from rclpy.lifecycle import TransitionCallbackReturn  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.time import Time  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage, Image  # noqa: E402
from std_msgs.msg import Bool  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from raydiff_ros.ros.conversions import matrix_to_pose  # noqa: E402
from raydiff_ros.ros.estimator_node import EstimatorNode  # noqa: E402

STAMP_NS = 1_000_000_000_000
PARAMETERS = {
    'estimator': 'python:node_scenarios:make_oracle',
    'image_transport': 'compressed',
    'keyframe_min_interval_s': 0.0,
    'map_pose_topic': '/map_pose',
}


@pytest.fixture
def node():
    rclpy.init()
    node = EstimatorNode(
        parameter_overrides=[Parameter(name, value=value) for name, value in PARAMETERS.items()]
    )
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    yield node
    node.release()
    node.destroy_node()
    rclpy.try_shutdown()


def compressed(pose_id: int, stamp_ns: int) -> CompressedImage:
    ok, png = cv2.imencode('.png', cv2.cvtColor(image_for(pose_id, stamp_ns), cv2.COLOR_RGB2BGR))
    assert ok
    message = CompressedImage(format='png', data=png.tobytes())
    message.header.stamp = Time(nanoseconds=stamp_ns).to_msg()
    message.header.frame_id = 'cam0_optical_frame'
    return message


def camera_info(K: np.ndarray) -> CameraInfo:
    message = CameraInfo(width=160, height=120, distortion_model='plumb_bob', d=[0.0] * 5)
    message.k = [float(v) for v in K.ravel()]
    message.p = [float(v) for v in np.hstack([K, np.zeros((3, 1))]).ravel()]
    return message


def map_pose(map_T_camera: np.ndarray, stamp_ns: int, frame: str = 'map') -> PoseStamped:
    message = PoseStamped()
    message.header.stamp = Time(nanoseconds=stamp_ns).to_msg()
    message.header.frame_id = frame
    message.pose = matrix_to_pose(map_T_camera)
    return message


def test_compressed_images_are_decoded_and_buffered_with_intrinsics_and_map_pose(node):
    inputs = node._inputs
    inputs._on_camera_info(0, camera_info(intrinsics()))
    pose = true_world_T_camera(3)
    inputs._on_map_pose(map_pose(pose, STAMP_NS))
    inputs._on_image(0, compressed(3, STAMP_NS))
    assert inputs.images_received == 1 and inputs.errors == {}
    counters = inputs.buffer.counters(0)
    assert counters.received == 1 and counters.kept == 1
    keyframe = inputs.buffer.latest(0)
    assert keyframe.stamp_ns == STAMP_NS and keyframe.frame_id == 'cam0_optical_frame'
    np.testing.assert_allclose(keyframe.map_T_camera, pose, atol=1e-9)
    np.testing.assert_allclose(keyframe.K, intrinsics(), rtol=1e-6)  # 160 x 120: not resized


def test_a_first_camera_info_after_the_image_gives_the_keyframe_its_intrinsics(node):
    inputs = node._inputs
    inputs._on_image(0, compressed(3, STAMP_NS))  # the info topic is not ordered with it
    assert inputs.buffer.latest(0).K is None
    inputs._on_camera_info(0, camera_info(intrinsics()))
    np.testing.assert_allclose(inputs.buffer.latest(0).K, intrinsics(), rtol=1e-6)
    assert inputs.buffer.counters(0).kept == 1 and inputs.errors == {}


def test_raw_bgr8_images_with_padded_rows_are_buffered_as_rgb_copies(node):
    inputs = node._inputs
    rgb = image_for(3, STAMP_NS)
    height, width = rgb.shape[:2]
    padded = np.zeros((height, width * 3 + 4), np.uint8)
    padded[:, : width * 3] = rgb[:, :, ::-1].reshape(height, -1)
    for offset_ns in (0, 1000):
        message = Image(height=height, width=width, encoding='bgr8', step=width * 3 + 4)
        message.data = padded.tobytes()
        message.header.stamp = Time(nanoseconds=STAMP_NS + offset_ns).to_msg()
        inputs._on_image(0, message)
    assert inputs.errors == {} and inputs.images_received == 2
    assert inputs.buffer.counters(0).kept == 2  # keyframe_min_interval_s 0: every frame
    for keyframe in inputs.buffer.keyframes(0):
        np.testing.assert_array_equal(keyframe.image, rgb)
        assert keyframe.image.flags.c_contiguous and keyframe.image.base is None


def test_a_map_pose_too_far_in_time_is_not_attached(node):
    inputs = node._inputs
    inputs._on_map_pose(map_pose(true_world_T_camera(3), STAMP_NS))
    inputs._on_image(0, compressed(4, STAMP_NS + 200_000_000))  # 0.2 s > map_pose_max_age_s
    assert inputs.buffer.latest(0).map_T_camera is None


def test_bad_inputs_are_counted_per_kind_and_camera_and_noted(node):
    inputs = node._inputs
    broken = compressed(3, STAMP_NS)
    broken.data = b'not a png'
    inputs._on_image(1, broken)
    inputs._on_image(1, broken)
    inputs._on_camera_info(0, camera_info(np.zeros((3, 3))))
    inputs._on_map_pose(map_pose(np.eye(4), STAMP_NS, frame='odom'))
    assert inputs.errors == {'image_1': 2, 'camera_info_0': 1, 'map_pose_0': 1}
    assert inputs.images_received == 2 and 0 not in inputs.intrinsics
    assert node._diagnostics.last_error.startswith("camera 0 map_pose: pose in 'odom'")
    status = node._diagnostics.publish(inputs, None, node._scheduler, node._calibration, '')
    values = {kv.key: kv.value for kv in status.status[0].values}
    assert values['input_errors_image_1'] == '2' and values['input_errors_map_pose_0'] == '1'
    assert status.status[0].message == node._diagnostics.last_error


def test_diagnostics_count_the_newest_estimates_cameras_per_pose_source(node):
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS

    def publish_and_diagnose(sources):
        view_set, estimate = estimate_with_sources(sources)
        node._publish_result(view_set, estimate, 0.1)
        array = node._diagnostics.publish(node._inputs, node._estimator, node._scheduler,
                                          node._calibration, '')
        status, = array.status
        return status, {kv.key: kv.value for kv in status.values}

    status, values = publish_and_diagnose(
        ('reference', 'verified_matches', 'prior', 'verified_matches'))
    assert values['view_sets_published'] == '1'
    assert values['cameras_reference'] == '1'
    assert values['cameras_verified_matches'] == '2' and values['cameras_prior'] == '1'
    # A camera fixed by the learned prior alone is an estimate, not a problem.
    assert status.level == DiagnosticStatus.OK, status.message

    status, values = publish_and_diagnose(('reference', 'prior', 'prior'))
    assert values['view_sets_published'] == '2'
    assert values['cameras_prior'] == '2' and 'cameras_verified_matches' not in values
    assert status.level == DiagnosticStatus.OK, status.message


def test_relocalization_is_due_once_asked_and_the_newest_keyframe_has_no_map_pose(node):
    inputs = node._inputs
    inputs._on_image(0, compressed(3, STAMP_NS))
    assert not inputs.relocalization_due()
    inputs._on_lost(Bool(data=False))
    assert not inputs.relocalization_requested
    response = inputs._on_request_relocalization(Trigger.Request(), Trigger.Response())
    assert response.success and 'relocalization requested' in response.message
    assert inputs.relocalization_due()
    inputs._on_map_pose(map_pose(true_world_T_camera(5), STAMP_NS + 1_000_000_000))
    inputs._on_image(0, compressed(5, STAMP_NS + 1_000_000_000))
    assert inputs.relocalization_requested and not inputs.relocalization_due()


def test_deactivation_removes_every_input_subscription(node):
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    topics = {s.topic_name for s in node.subscriptions}
    assert {'/image_0/compressed', '/camera_info_1', '/map_pose'} <= topics
    assert any(topic.endswith('/lost') for topic in topics)
    assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    assert not any('image_' in s.topic_name for s in node.subscriptions)
