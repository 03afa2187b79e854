"""Relay raydiff_ros/PoseGraph to pose_graph_tools_msgs/PoseGraph (Kimera-PGMO, Hydra).

The two definitions are identical field for field (only the package differs), so the relay
copies every field by name. Topics (remap them):

* ``pose_graph_in`` (raydiff_ros/PoseGraph), e.g. the estimator's ``~/pose_graph``;
* ``pose_graph_out`` (pose_graph_tools_msgs/PoseGraph), e.g.
  ``/hydra_ros_node/external_loop_closures``.

    ros2 run raydiff_ros pose_graph_relay --ros-args \\
        -r pose_graph_in:=/raydiff_estimator/pose_graph -r pose_graph_out:=/pgmo/pose_graph
"""

import importlib
import sys

import rclpy
from rclpy.node import Node
from rosidl_parser.definition import AbstractSequence, NamespacedType

from raydiff_ros.msg import PoseGraph
from raydiff_ros.ros.qos import ESTIMATE_QOS


def _message_class(namespaced: NamespacedType) -> type:
    module = importlib.import_module('.'.join(namespaced.namespaces))
    return getattr(module, namespaced.name)


def convert_message(source, target_type: type):
    """Return a ``target_type`` message with every field copied from ``source`` by name.

    Nested messages whose types differ between the two packages (e.g. the node and edge types)
    are converted recursively; shared types (std_msgs/Header, geometry_msgs/Pose) are copied.
    Raises AttributeError naming the field when ``source`` lacks one of the target's fields.
    """
    target = target_type()
    fields = target_type.get_fields_and_field_types()
    for field, slot in zip(fields, target_type.SLOT_TYPES, strict=True):
        if not hasattr(source, field):
            raise AttributeError(
                f'{type(source).__name__} has no field {field!r} of {target_type.__name__}')
        value = getattr(source, field)
        if isinstance(slot, NamespacedType):
            nested = _message_class(slot)
            value = value if type(value) is nested else convert_message(value, nested)
        elif isinstance(slot, AbstractSequence) and isinstance(slot.value_type, NamespacedType):
            nested = _message_class(slot.value_type)
            value = [item if type(item) is nested else convert_message(item, nested)
                     for item in value]
        setattr(target, field, value)
    return target


class PoseGraphRelay(Node):
    """Subscribes raydiff_ros/PoseGraph, publishes pose_graph_tools_msgs/PoseGraph."""

    def __init__(self) -> None:
        super().__init__('pose_graph_relay')
        from pose_graph_tools_msgs.msg import PoseGraph as UpstreamPoseGraph
        self._upstream_type = UpstreamPoseGraph
        self._publisher = self.create_publisher(UpstreamPoseGraph, 'pose_graph_out',
                                                ESTIMATE_QOS)
        self.create_subscription(PoseGraph, 'pose_graph_in', self._relay, ESTIMATE_QOS)

    def _relay(self, message: PoseGraph) -> None:
        self._publisher.publish(convert_message(message, self._upstream_type))


def main(argv: list[str] | None = None) -> int:
    try:
        importlib.import_module('pose_graph_tools_msgs.msg')
    except ImportError:
        print('pose_graph_relay: pose_graph_tools_msgs is not installed; build MIT-SPARK '
              'pose_graph_tools (ROS 2 branch) in your workspace', file=sys.stderr)
        return 1
    rclpy.init(args=argv)
    node = PoseGraphRelay()
    try:
        rclpy.spin(node)
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
