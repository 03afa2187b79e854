"""Launch the middleware round-trip demo: a talker and a listener of PoseGraph and /tf_static.

    ros2 launch raydiff_ros demo_roundtrip.launch.py
"""

from launch import LaunchDescription
from launch_ros.actions import Node


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([
        Node(package='raydiff_ros', executable='demo_listener', name='raydiff_demo_listener',
             output='screen'),
        Node(package='raydiff_ros', executable='demo_talker', name='raydiff_demo_talker',
             output='screen'),
    ])
