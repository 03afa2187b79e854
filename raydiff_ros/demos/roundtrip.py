"""Middleware round trip: one process publishes a PoseGraph and a TF message, another receives.

The ``make demo-roundtrip`` demo: it proves the environment end to end (rclpy over DDS, the
generated ``raydiff_ros`` interfaces, the ``tf2_msgs`` interface, the latched QoS of
``/tf_static``).

Run ``python -m raydiff_ros.demos.roundtrip`` (both processes), or the ``demo_talker`` and
``demo_listener`` executables separately.
"""

import argparse
import subprocess
import sys
import time

import numpy as np
import rclpy
from rclpy.event_handler import PublisherEventCallbacks
from rclpy.node import Node
from scipy.spatial.transform import Rotation
from tf2_msgs.msg import TFMessage

from raydiff_ros.msg import PoseGraph, PoseGraphEdge, PoseGraphNode
from raydiff_ros.ros.conversions import matrix_to_pose, transform_stamped
from raydiff_ros.ros.qos import ESTIMATE_QOS, TF_STATIC_QOS

POSE_GRAPH_TOPIC = '/raydiff/pose_graph'
TF_STATIC_TOPIC = '/tf_static'
FRAME_PREFIX = 'raydiff/'
DEFAULT_SEED = 7
DEFAULT_NUM_CAMERAS = 3
DEFAULT_TIMEOUT_S = 20.0
#: First keyframe stamp of the demo graph, nanoseconds.
BASE_STAMP_NS = 1_700_000_000_000_000_000
KEYFRAME_PERIOD_NS = 33_000_000


def optical_frame(index: int) -> str:
    return f'{FRAME_PREFIX}cam{index}_optical_frame'


def demo_rig(seed: int, num_cameras: int) -> np.ndarray:
    """Return (num_cameras, 4, 4) ``cam0_T_camk`` of a seeded synthetic camera rig."""
    rng = np.random.default_rng(seed)
    rig = np.tile(np.eye(4), (num_cameras, 1, 1))
    for k in range(1, num_cameras):
        rig[k, :3, :3] = Rotation.from_rotvec(rng.normal(scale=0.3, size=3)).as_matrix()
        rig[k, :3, 3] = rng.normal(scale=0.5, size=3)
    return rig


def demo_messages(seed: int = DEFAULT_SEED,
                  num_cameras: int = DEFAULT_NUM_CAMERAS) -> tuple[PoseGraph, TFMessage]:
    """Build the PoseGraph and TFMessage of a seeded rig (the same in every process)."""
    rng = np.random.default_rng(seed + 1)
    rig = demo_rig(seed, num_cameras)
    stamps = [rclpy.time.Time(nanoseconds=BASE_STAMP_NS + k * KEYFRAME_PERIOD_NS).to_msg()
              for k in range(num_cameras)]
    graph = PoseGraph()
    graph.header.stamp = stamps[-1]
    graph.header.frame_id = optical_frame(0)
    for k in range(num_cameras):
        node = PoseGraphNode()
        node.header.stamp = stamps[k]
        node.header.frame_id = optical_frame(0)
        node.robot_id = k
        node.key = BASE_STAMP_NS + k * KEYFRAME_PERIOD_NS
        node.pose = matrix_to_pose(rig[k])
        graph.nodes.append(node)
    for k in range(1, num_cameras):
        edge = PoseGraphEdge()
        edge.header.stamp = stamps[-1]
        edge.key_from, edge.key_to = graph.nodes[0].key, graph.nodes[k].key
        edge.robot_from, edge.robot_to = 0, k
        edge.type = PoseGraphEdge.LOOPCLOSE
        edge.pose = matrix_to_pose(rig[k])  # from_T_to = cam0_T_camk
        spread = rng.uniform(1e-4, 1e-2, size=6)
        edge.covariance = np.diag(spread).ravel().tolist()
        graph.edges.append(edge)
    tf = TFMessage(transforms=[
        transform_stamped(rig[k], optical_frame(0), optical_frame(k), stamps[-1])
        for k in range(1, num_cameras)])
    return graph, tf


def _spin_until(node: Node, done, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not done() and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    return done()


def run_talker(seed: int, num_cameras: int, timeout_s: float) -> int:
    """Publish one PoseGraph and one TFMessage (both latched) and wait for a subscriber."""
    rclpy.init()
    node = rclpy.create_node('raydiff_demo_talker')
    try:
        matched = {'total': 0, 'current': 0}

        def on_matched(status) -> None:
            matched['total'], matched['current'] = status.total_count, status.current_count

        graph_pub = node.create_publisher(
            PoseGraph, POSE_GRAPH_TOPIC, ESTIMATE_QOS,
            event_callbacks=PublisherEventCallbacks(matched=on_matched))
        tf_pub = node.create_publisher(TFMessage, TF_STATIC_TOPIC, TF_STATIC_QOS)
        graph, tf = demo_messages(seed, num_cameras)
        graph_pub.publish(graph)
        tf_pub.publish(tf)
        node.get_logger().info(
            f'published a PoseGraph ({len(graph.nodes)} nodes, {len(graph.edges)} edges) on '
            f'{POSE_GRAPH_TOPIC} and {len(tf.transforms)} transforms on {TF_STATIC_TOPIC}')
        # Latched (transient local): stay alive until a subscriber has come and gone (the
        # matched event counts subscribers even when one leaves between two spins).
        served = _spin_until(
            node, lambda: matched['total'] > 0 and matched['current'] == 0, timeout_s)
        return 0 if served else 1
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def receive(timeout_s: float) -> tuple[PoseGraph | None, TFMessage | None]:
    """Subscribe to the demo topics and return the first PoseGraph and TFMessage received."""
    received: dict[str, object] = {}
    rclpy.init()
    node = rclpy.create_node('raydiff_demo_listener')
    try:
        node.create_subscription(PoseGraph, POSE_GRAPH_TOPIC,
                                 lambda msg: received.setdefault('graph', msg), ESTIMATE_QOS)
        node.create_subscription(TFMessage, TF_STATIC_TOPIC,
                                 lambda msg: received.setdefault('tf', msg), TF_STATIC_QOS)
        _spin_until(node, lambda: len(received) == 2, timeout_s)
        return received.get('graph'), received.get('tf')
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def describe(graph: PoseGraph, tf: TFMessage) -> str:
    """Human-readable summary of what was received."""
    lines = [f'PoseGraph in {graph.header.frame_id}: {len(graph.nodes)} nodes, '
             f'{len(graph.edges)} edges']
    for edge in graph.edges:
        p = edge.pose.position
        lines.append(f'  edge {edge.key_from} -> {edge.key_to} (robot {edge.robot_from} -> '
                     f'{edge.robot_to}, type {edge.type}): from_T_to translation '
                     f'({p.x:+.3f}, {p.y:+.3f}, {p.z:+.3f})')
    lines.append(f'TFMessage on {TF_STATIC_TOPIC}: {len(tf.transforms)} transforms')
    for t in tf.transforms:
        v = t.transform.translation
        lines.append(f'  {t.header.frame_id} -> {t.child_frame_id}: '
                     f'({v.x:+.3f}, {v.y:+.3f}, {v.z:+.3f})')
    return '\n'.join(lines)


def listener_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description='Receive the demo PoseGraph and TF message.')
    parser.add_argument('--timeout', type=float, default=DEFAULT_TIMEOUT_S)
    args, _ = parser.parse_known_args(argv)
    graph, tf = receive(args.timeout)
    if graph is None or tf is None:
        print(f'listener: nothing received within {args.timeout} s', file=sys.stderr)
        return 1
    print('listener received:\n' + describe(graph, tf), flush=True)
    return 0


def talker_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description='Publish the demo PoseGraph and TF message.')
    parser.add_argument('--seed', type=int, default=DEFAULT_SEED)
    parser.add_argument('--num-cameras', type=int, default=DEFAULT_NUM_CAMERAS)
    parser.add_argument('--timeout', type=float, default=DEFAULT_TIMEOUT_S)
    args, _ = parser.parse_known_args(argv)
    return run_talker(args.seed, args.num_cameras, args.timeout)


def main(argv: list[str] | None = None) -> int:
    """Run the listener in a second process and the talker in this one."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--timeout', type=float, default=DEFAULT_TIMEOUT_S)
    args = parser.parse_args(argv)
    listener = subprocess.Popen(
        [sys.executable, '-m', 'raydiff_ros.demos.roundtrip', 'listener',
         '--timeout', str(args.timeout)])
    talker_status = run_talker(DEFAULT_SEED, DEFAULT_NUM_CAMERAS, args.timeout)
    listener_status = listener.wait(timeout=args.timeout + 10.0)
    ok = talker_status == 0 and listener_status == 0
    print('demo: round trip ' + ('succeeded' if ok else 'FAILED'), flush=True)
    return 0 if ok else 1


if __name__ == '__main__':
    if len(sys.argv) > 1 and sys.argv[1] == 'listener':
        sys.exit(listener_main(sys.argv[2:]))
    if len(sys.argv) > 1 and sys.argv[1] == 'talker':
        sys.exit(talker_main(sys.argv[2:]))
    sys.exit(main(sys.argv[1:]))
