"""Write and replay rosbag2 files without a ROS installation (rosbags + rclpy).

Messages are serialised with rclpy (the same CDR bytes a ROS 2 recorder stores) and written by
``rosbags``; replay publishes the raw bytes with rclpy, so no message is rebuilt on the way.
``/tf_static`` is recorded with transient-local offered QoS, as ``ros2 bag record`` does.
"""

import importlib
from pathlib import Path
import time
from typing import Iterable, Optional

from rclpy.node import Node
from rclpy.publisher import Publisher
from rclpy.serialization import serialize_message
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.rosbag2.metadata import (
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)
from rosbags.typesys import Stores, get_typestore

from raydiff_ros.ros.qos import TF_STATIC_QOS

TYPESTORE = Stores.ROS2_KILTED
LATCHED_TOPICS = ('/tf_static', '/ground_truth/tf_static')
BAG_VERSION = 9
SUBSCRIPTION_POLL_S = 0.05


def latched_qos() -> list[Qos]:
    """Offered QoS of a latched topic (reliable, transient local, depth 1), for the bag."""
    zero = QosTime(0, 0)
    return [Qos(history=QosHistory.KEEP_LAST, depth=1, reliability=QosReliability.RELIABLE,
                durability=QosDurability.TRANSIENT_LOCAL, deadline=zero, lifespan=zero,
                liveliness=QosLiveliness.AUTOMATIC, liveliness_lease_duration=zero,
                avoid_ros_namespace_conventions=False)]


def write_bag(path: Path, messages: Iterable[tuple[str, int, object]]) -> Path:
    """Write ``(topic, stamp_ns, rclpy message)`` tuples (in any order) to an MCAP bag."""
    store = get_typestore(TYPESTORE)
    records = sorted(messages, key=lambda item: item[1])
    connections = {}
    with Writer(Path(path), version=BAG_VERSION, storage_plugin=StoragePlugin.MCAP) as writer:
        for topic, stamp_ns, message in records:
            if topic not in connections:
                msgtype = message_type_name(message)
                qos = latched_qos() if topic in LATCHED_TOPICS else ()
                connections[topic] = writer.add_connection(
                    topic, msgtype, typestore=store, offered_qos_profiles=qos)
            writer.write(connections[topic], stamp_ns, serialize_message(message))
    return Path(path)


def message_type_name(message: object) -> str:
    """'sensor_msgs/msg/Image' for a sensor_msgs.msg.Image instance."""
    module = type(message).__module__.split('.')
    return f'{module[0]}/msg/{type(message).__name__}'


def message_class(type_name: str) -> type:
    package, kind, name = type_name.split('/')
    return getattr(importlib.import_module(f'{package}.{kind}'), name)


def replay(path: Path, node: Node, remap: Optional[dict[str, str]] = None,
           rate: float = 1.0, qos_depth: int = 10, wait_for: Iterable[str] = (),
           wait_timeout_s: float = 10.0) -> int:
    """Publish every message of the bag in time order (``rate`` x real time); returns count.

    A publisher is made for every topic of the bag first; then, before the first message,
    replay waits until each topic of ``wait_for`` (names after ``remap``) has a matched
    subscription: a message published before discovery has matched it is lost (the first
    CameraInfo of a camera, say).

    Raises:
        TimeoutError: a ``wait_for`` topic had no subscription within ``wait_timeout_s``.
        ValueError: a ``wait_for`` topic is not in the bag.
    """
    remap = remap or {}
    publishers = {}
    count = 0
    with Reader(Path(path)) as reader:
        for connection in reader.connections:
            topic = remap.get(connection.topic, connection.topic)
            if topic not in publishers:
                qos = TF_STATIC_QOS if connection.topic in LATCHED_TOPICS else qos_depth
                publishers[topic] = node.create_publisher(message_class(connection.msgtype),
                                                          topic, qos)
        wait_for_subscriptions({topic: publishers.get(topic) for topic in wait_for},
                               wait_timeout_s)
        start_bag, start_wall = None, time.monotonic()
        for connection, stamp_ns, raw in reader.messages():
            topic = remap.get(connection.topic, connection.topic)
            start_bag = stamp_ns if start_bag is None else start_bag
            delay = (stamp_ns - start_bag) / 1e9 / rate - (time.monotonic() - start_wall)
            if delay > 0:
                time.sleep(delay)
            publishers[topic].publish(bytes(raw))
            count += 1
    return count


def wait_for_subscriptions(publishers: dict[str, Optional[Publisher]],
                           timeout_s: float) -> None:
    """Wait until every publisher (by topic) has a matched subscription.

    Raises:
        ValueError: a topic has no publisher (None).
        TimeoutError: some had none within ``timeout_s``.
    """
    missing = sorted(topic for topic, publisher in publishers.items() if publisher is None)
    if missing:
        raise ValueError(f'topics {missing} are not in the bag')
    deadline = time.monotonic() + timeout_s
    while True:
        waiting = sorted(topic for topic, publisher in publishers.items()
                         if publisher.get_subscription_count() == 0)
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f'no subscription on {waiting} within {timeout_s:g} s')
        time.sleep(SUBSCRIPTION_POLL_S)
