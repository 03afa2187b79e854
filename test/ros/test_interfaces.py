"""The generated interfaces have the field layouts (type hashes) their consumers require."""

import pytest

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip('rclpy', reason='rclpy is not installed (run: make test)')
typesys = pytest.importorskip('rosbags.typesys', reason='rosbags is not installed')

from raydiff_ros.msg import (  # noqa: E402
    CameraEstimate,
    PoseGraph,
    PoseGraphEdge,
    PoseGraphNode,
    ViewSetEstimate,
)

# MIT-SPARK pose_graph_tools_msgs (ROS 2 branch) definitions, with the package name replaced:
# identical field names, types and constants give an identical type hash (RIHS01) up to the
# package name, so a field-by-field relay is all a back-end reading those needs.
UPSTREAM_POSE_GRAPH_TOOLS = {
    'PoseGraphNode': """
std_msgs/Header header
int32 robot_id
uint64 key
geometry_msgs/Pose pose
""",
    'PoseGraphEdge': """
std_msgs/Header header
uint64 key_from
uint64 key_to
int32 robot_from
int32 robot_to
int32 type
int32 ODOM=0
int32 LOOPCLOSE=1
int32 LANDMARK=2
int32 REJECTED_LOOPCLOSE=3
int32 MESH=4
int32 POSE_MESH=5
int32 MESH_POSE=6
geometry_msgs/Pose pose
float64[36] covariance
""",
    'PoseGraph': """
std_msgs/Header header
PACKAGE/PoseGraphNode[] nodes
PACKAGE/PoseGraphEdge[] edges
""",
}
OFFICIAL_TF_MESSAGE_HASH = (
    'RIHS01_e369d0f05a23ae52508854b66f6aa0437f3449d652e8cbf22d5abe85d020f087')


def upstream_hashes(package: str) -> dict[str, str]:
    """RIHS01 hashes of the upstream definitions registered under ``package``."""
    store = typesys.get_typestore(typesys.Stores.ROS2_KILTED)
    types = {}
    for name, text in UPSTREAM_POSE_GRAPH_TOOLS.items():
        types.update(typesys.get_types_from_msg(text.replace('PACKAGE', package),
                                                f'{package}/msg/{name}'))
    store.register(types)
    return {name: store.hash_rihs01(f'{package}/msg/{name}') for name in UPSTREAM_POSE_GRAPH_TOOLS}


def wire_hashes(message_types) -> dict[str, str]:
    """The type hashes rclpy announces for publishers of ``message_types``."""
    rclpy.init()
    try:
        node = rclpy.create_node('raydiff_interface_probe')
        hashes = {}
        for message_type in message_types:
            topic = f'/raydiff_interface_probe/{message_type.__name__}'
            node.create_publisher(message_type, topic, 1)
            info, = node.get_publishers_info_by_topic(topic)
            hashes[message_type.__name__] = str(info.topic_type_hash)
        node.destroy_node()
        return hashes
    finally:
        rclpy.try_shutdown()


def test_pose_graph_family_matches_pose_graph_tools_layout():
    generated = wire_hashes([PoseGraphNode, PoseGraphEdge, PoseGraph])
    assert generated == upstream_hashes('raydiff_ros')


def test_pose_graph_tools_stand_in_has_the_upstream_hashes():
    """The stand-in used to test the relay announces what upstream definitions hash to."""
    upstream = pytest.importorskip('pose_graph_tools_msgs.msg')
    generated = wire_hashes([upstream.PoseGraphNode, upstream.PoseGraphEdge, upstream.PoseGraph])
    assert generated == upstream_hashes('pose_graph_tools_msgs')


def test_layout_check_detects_a_changed_field():
    """A single renamed field changes the hash, so the test above can fail."""
    original = UPSTREAM_POSE_GRAPH_TOOLS['PoseGraphNode']
    try:
        UPSTREAM_POSE_GRAPH_TOOLS['PoseGraphNode'] = original.replace('robot_id', 'robot')
        changed = upstream_hashes('raydiff_ros')['PoseGraphNode']
    finally:
        UPSTREAM_POSE_GRAPH_TOOLS['PoseGraphNode'] = original
    assert changed != wire_hashes([PoseGraphNode])['PoseGraphNode']


def test_edge_constants_and_covariance_size():
    assert (PoseGraphEdge.ODOM, PoseGraphEdge.LOOPCLOSE, PoseGraphEdge.MESH_POSE) == (0, 1, 6)
    assert len(PoseGraphEdge().covariance) == 36


def test_view_set_estimate_carries_cameras_with_uncertainty():
    camera = CameraEstimate(camera_index=2, intrinsics=[500.0, 501.0, 320.0, 240.0],
                            intrinsics_estimated=False)
    camera.covariance[0] = 0.01
    estimate = ViewSetEstimate(mode=ViewSetEstimate.MODE_RIG,
                               scale_source=ViewSetEstimate.SCALE_KNOWN_BASELINE,
                               cameras=[CameraEstimate(), camera], num_samples=8)
    assert estimate.cameras[1].covariance[0] == 0.01
    assert list(estimate.cameras[1].intrinsics) == [500.0, 501.0, 320.0, 240.0]
    assert ViewSetEstimate.SCALE_NONE == 0


def test_rosbags_agrees_on_the_official_tf_message_hash():
    store = typesys.get_typestore(typesys.Stores.ROS2_KILTED)
    assert store.hash_rihs01('tf2_msgs/msg/TFMessage') == OFFICIAL_TF_MESSAGE_HASH
