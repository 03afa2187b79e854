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
           rate: float = 1.0, qos_depth: int = 10) -> int:
    """Publish every message of the bag in time order (``rate`` x real time); returns count."""
    remap = remap or {}
    publishers = {}
    count = 0
    with Reader(Path(path)) as reader:
        start_bag, start_wall = None, time.monotonic()
        for connection, stamp_ns, raw in reader.messages():
            topic = remap.get(connection.topic, connection.topic)
            if topic not in publishers:
                qos = TF_STATIC_QOS if connection.topic in LATCHED_TOPICS else qos_depth
                publishers[topic] = node.create_publisher(message_class(connection.msgtype),
                                                          topic, qos)
            start_bag = stamp_ns if start_bag is None else start_bag
            delay = (stamp_ns - start_bag) / 1e9 / rate - (time.monotonic() - start_wall)
            if delay > 0:
                time.sleep(delay)
            publishers[topic].publish(bytes(raw))
            count += 1
    return count
