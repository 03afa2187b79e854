"""The relay turns raydiff_ros/PoseGraph into pose_graph_tools_msgs/PoseGraph, field for field."""

import time

import pytest

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip('rclpy', reason='rclpy is not installed (run: make test)')
upstream = pytest.importorskip('pose_graph_tools_msgs.msg',
                               reason='pose_graph_tools_msgs is not installed (run: make test)')

from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from ros_compare import message_differences  # noqa: E402

from raydiff_ros.demos.roundtrip import demo_messages  # noqa: E402
from raydiff_ros.msg import PoseGraph  # noqa: E402
from raydiff_ros.ros.pose_graph_relay import PoseGraphRelay, convert_message  # noqa: E402
from raydiff_ros.ros.qos import ESTIMATE_QOS  # noqa: E402

TIMEOUT_S = 20.0


def as_upstream_expected(graph: PoseGraph):
    """Build the expected upstream message by hand, field by field."""
    expected = upstream.PoseGraph(header=graph.header)
    for node in graph.nodes:
        expected.nodes.append(upstream.PoseGraphNode(
            header=node.header, robot_id=node.robot_id, key=node.key, pose=node.pose))
    for edge in graph.edges:
        expected.edges.append(upstream.PoseGraphEdge(
            header=edge.header, key_from=edge.key_from, key_to=edge.key_to,
            robot_from=edge.robot_from, robot_to=edge.robot_to, type=edge.type,
            pose=edge.pose, covariance=edge.covariance))
    return expected


def test_convert_message_copies_every_field():
    graph, _ = demo_messages(seed=5, num_cameras=4)
    converted = convert_message(graph, upstream.PoseGraph)
    assert type(converted) is upstream.PoseGraph
    assert type(converted.edges[0]) is upstream.PoseGraphEdge
    assert message_differences(as_upstream_expected(graph), converted) == []


def test_convert_message_names_a_missing_field():
    class Partial:
        header = PoseGraph().header

    with pytest.raises(AttributeError, match="no field 'nodes'"):
        convert_message(Partial(), upstream.PoseGraph)


def test_relay_node_forwards_over_dds():
    graph, _ = demo_messages(seed=9, num_cameras=3)
    received = []
    rclpy.init()
    try:
        relay = PoseGraphRelay()
        probe = rclpy.create_node('relay_probe')
        publisher = probe.create_publisher(PoseGraph, 'pose_graph_in', ESTIMATE_QOS)
        probe.create_subscription(upstream.PoseGraph, 'pose_graph_out', received.append,
                                  ESTIMATE_QOS)
        executor = SingleThreadedExecutor()
        executor.add_node(relay)
        executor.add_node(probe)
        publisher.publish(graph)
        deadline = time.monotonic() + TIMEOUT_S
        while not received and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
        assert received, 'relay output not received'
        assert message_differences(as_upstream_expected(graph), received[0]) == []
        executor.shutdown()
        relay.destroy_node()
        probe.destroy_node()
    finally:
        rclpy.try_shutdown()
