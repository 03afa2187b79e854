"""Publish transforms on /tf and /tf_static the way tf2_ros broadcasters do.

Our own publishers (not tf2_ros), so the node runs where tf2_ros is not installed; the message
type is tf2_msgs/TFMessage and the QoS profiles are tf2's, so every tf2 listener receives them.

``/tf_static`` is latched with depth 1, so one message must carry every static transform of
the node: :class:`StaticTransformPublisher` keeps them all (by child frame) and republishes the
whole set when one changes (updating a child frame, as the tf2 C++ broadcaster does).
"""

from geometry_msgs.msg import TransformStamped
from rclpy.node import Node
from tf2_msgs.msg import TFMessage

from raydiff_ros.ros.qos import TF_QOS, TF_STATIC_QOS

TF_TOPIC = '/tf'
TF_STATIC_TOPIC = '/tf_static'


class StaticTransformPublisher:
    """Latched ``/tf_static`` publisher that keeps and republishes all of a node's transforms."""

    def __init__(self, node: Node) -> None:
        self._publisher = node.create_publisher(TFMessage, TF_STATIC_TOPIC, TF_STATIC_QOS)
        self._transforms: dict[str, TransformStamped] = {}

    def send(self, transforms: list[TransformStamped]) -> None:
        for transform in transforms:
            self._transforms[transform.child_frame_id] = transform
        self._publisher.publish(TFMessage(transforms=list(self._transforms.values())))

    @property
    def transforms(self) -> list[TransformStamped]:
        return list(self._transforms.values())


class TransformPublisher:
    """``/tf`` publisher (dynamic transforms)."""

    def __init__(self, node: Node) -> None:
        self._publisher = node.create_publisher(TFMessage, TF_TOPIC, TF_QOS)

    def send(self, transforms: list[TransformStamped]) -> None:
        self._publisher.publish(TFMessage(transforms=list(transforms)))
