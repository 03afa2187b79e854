"""A PoseGraph and a TFMessage published by one process arrive intact in another (real DDS)."""

import subprocess
import sys

import pytest

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip('rclpy', reason='rclpy is not installed (run: make test)')

from ros_compare import message_differences  # noqa: E402

from raydiff_ros.demos import roundtrip  # noqa: E402
from raydiff_ros.msg import PoseGraphEdge  # noqa: E402

OFFICIAL_TF_MESSAGE_HASH = (
    'RIHS01_e369d0f05a23ae52508854b66f6aa0437f3449d652e8cbf22d5abe85d020f087')
SEED = 11
NUM_CAMERAS = 5
TIMEOUT_S = 30.0


@pytest.fixture(scope='module')
def received():
    talker = subprocess.Popen(
        [sys.executable, '-m', 'raydiff_ros.demos.roundtrip', 'talker',
         '--seed', str(SEED), '--num-cameras', str(NUM_CAMERAS), '--timeout', str(TIMEOUT_S)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        graph, tf = roundtrip.receive(TIMEOUT_S)
    finally:
        output, _ = talker.communicate(timeout=TIMEOUT_S + 10.0)
    assert talker.returncode == 0, f'talker failed:\n{output}'
    assert graph is not None and tf is not None, f'nothing received; talker said:\n{output}'
    return graph, tf


def test_pose_graph_arrives_field_for_field(received):
    graph, _ = received
    expected, _ = roundtrip.demo_messages(SEED, NUM_CAMERAS)
    assert len(graph.nodes) == NUM_CAMERAS and len(graph.edges) == NUM_CAMERAS - 1
    assert message_differences(expected, graph) == []
    assert all(edge.type == PoseGraphEdge.LOOPCLOSE for edge in graph.edges)


def test_tf_message_arrives_field_for_field(received):
    _, tf = received
    _, expected = roundtrip.demo_messages(SEED, NUM_CAMERAS)
    assert len(tf.transforms) == NUM_CAMERAS - 1
    assert message_differences(expected, tf) == []


def test_comparison_detects_a_changed_field(received):
    graph, _ = received
    expected, _ = roundtrip.demo_messages(SEED, NUM_CAMERAS)
    expected.edges[1].covariance[7] += 1e-9
    assert message_differences(expected, graph) == ['msg.edges[1].covariance[7]: '
                                                    f'{graph.edges[1].covariance[7]!r} != '
                                                    f'{expected.edges[1].covariance[7]!r}']


def test_tf_static_publisher_has_the_official_type_hash():
    """The stand-in tf2_msgs (or the distro's) announces the hash real ROS 2 peers use."""
    from tf2_msgs.msg import TFMessage

    from raydiff_ros.ros.qos import TF_STATIC_QOS
    rclpy.init()
    try:
        node = rclpy.create_node('raydiff_hash_probe')
        node.create_publisher(TFMessage, '/raydiff_hash_probe/tf_static', TF_STATIC_QOS)
        infos = node.get_publishers_info_by_topic('/raydiff_hash_probe/tf_static')
        assert len(infos) == 1
        assert str(infos[0].topic_type_hash) == OFFICIAL_TF_MESSAGE_HASH
        node.destroy_node()
    finally:
        rclpy.try_shutdown()
