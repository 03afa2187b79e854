"""Bags written and replayed without a ROS installation (the demo's bag tools)."""

import threading
import time

import pytest

rclpy = pytest.importorskip('rclpy', reason='rclpy is not installed (run: make test)')

from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from std_msgs.msg import String  # noqa: E402

from raydiff_ros.demos.bag_tools import replay, write_bag  # noqa: E402

START_NS = 1_000_000_000
PERIOD_NS = 1_000_000  # 1 ms apart: the whole bag replays in a few ms


@pytest.fixture
def bag(tmp_path):
    records = [(topic, START_NS + k * PERIOD_NS, String(data=f'{topic} {k}'))
               for k in range(5) for topic in ('/a', '/b')]
    return write_bag(tmp_path / 'bag', records)


@pytest.fixture
def nodes(ros):
    player, listener = rclpy.create_node('bag_player'), rclpy.create_node('bag_listener')
    yield player, listener
    player.destroy_node()
    listener.destroy_node()


def test_replay_waits_for_the_subscriptions_so_the_first_messages_arrive(bag, nodes):
    player, listener = nodes
    received = []
    executor = SingleThreadedExecutor()
    executor.add_node(listener)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    # the subscriber comes up after replay has started (as a node still starting would)
    late = threading.Timer(0.5, lambda: listener.create_subscription(
        String, '/b', lambda m: received.append(m.data), 10))
    late.start()
    try:
        assert replay(bag, player, wait_for=['/b'], wait_timeout_s=30.0) == 10
        for _ in range(100):  # at most 5 s for delivery
            if len(received) == 5:
                break
            time.sleep(0.05)
    finally:
        late.join()
        executor.shutdown()
        thread.join(timeout=5)
    assert received == [f'/b {k}' for k in range(5)]


def test_replay_refuses_a_topic_without_subscription_or_not_in_the_bag(bag, nodes):
    player, _ = nodes
    with pytest.raises(TimeoutError, match=r"\['/a'\]"):
        replay(bag, player, wait_for=['/a'], wait_timeout_s=0.2)
    with pytest.raises(ValueError, match='not in the bag'):
        replay(bag, player, wait_for=['/c'], wait_timeout_s=0.2)
