"""QoS profiles of the topics raydiff_ros publishes, matching what their consumers expect."""

from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)

#: ``/tf``: what tf2_ros.TransformBroadcaster uses.
TF_QOS = QoSProfile(depth=100, history=HistoryPolicy.KEEP_LAST,
                    reliability=ReliabilityPolicy.RELIABLE)

#: ``/tf_static``: what tf2_ros.StaticTransformBroadcaster uses (latched for late joiners; one
#: message must carry every static transform of the node, since depth is 1).
TF_STATIC_QOS = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST,
                           reliability=ReliabilityPolicy.RELIABLE,
                           durability=DurabilityPolicy.TRANSIENT_LOCAL)

#: Pose graphs and view-set estimates: reliable, latched so a late back-end gets the last one.
ESTIMATE_QOS = QoSProfile(depth=10, history=HistoryPolicy.KEEP_LAST,
                          reliability=ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.TRANSIENT_LOCAL)

#: Camera images and camera info: best effort, as REP 2003 asks of sensor consumers.
SENSOR_QOS = qos_profile_sensor_data
