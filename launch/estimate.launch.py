"""Launch the raydiff_ros estimator node.

    ros2 launch raydiff_ros estimate.launch.py \\
        image_topics:=/cam_left/image_raw,/cam_right/image_raw \\
        camera_info_topics:=/cam_left/camera_info,/cam_right/camera_info \\
        model_dir:=/path/to/model device:=cuda

Arguments: params_file (default: the installed config/estimate.yaml), model_dir, device,
image_topics and camera_info_topics (comma-separated, camera i -> image_<i> and
camera_info_<i>; their count sets num_cameras), mode (rig | temporal), seed_topic (where
relocalization seeds go, e.g. /initialpose), namespace, use_sim_time, log_level, enclave
(SROS2 security enclave, e.g. /raydiff_ros/estimator; empty: none, as without security).
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def _split(text: str) -> list[str]:
    return [item.strip() for item in text.split(',') if item.strip()]


def _estimator_node(context) -> list[Node]:
    def value(name: str) -> str:
        return LaunchConfiguration(name).perform(context)

    images, infos = _split(value('image_topics')), _split(value('camera_info_topics'))
    if len(images) != len(infos):
        raise RuntimeError(f'image_topics ({len(images)}) and camera_info_topics '
                           f'({len(infos)}) must list the same number of cameras')
    remappings = [(f'image_{i}', topic) for i, topic in enumerate(images)]
    remappings += [(f'image_{i}/compressed', f'{topic}/compressed')
                   for i, topic in enumerate(images)]
    remappings += [(f'camera_info_{i}', topic) for i, topic in enumerate(infos)]
    remappings.append(('~/relocalization_seed', value('seed_topic')))
    overrides = {'model_dir': value('model_dir'), 'device': value('device'),
                 'mode': value('mode'), 'use_sim_time': value('use_sim_time') == 'true'}
    if images:
        overrides['num_cameras'] = len(images)
    ros_arguments = ['--log-level', value('log_level')]
    if value('enclave'):
        ros_arguments += ['--enclave', value('enclave')]
    return [Node(
        package='raydiff_ros', executable='estimator_node', name='raydiff_estimator',
        namespace=value('namespace'), output='screen',
        parameters=[value('params_file'), overrides], remappings=remappings,
        arguments=['--ros-args', *ros_arguments])]


def generate_launch_description() -> LaunchDescription:
    default_params = os.path.join(get_package_share_directory('raydiff_ros'), 'config',
                                  'estimate.yaml')
    arguments = [
        ('params_file', default_params, 'node parameters (YAML)'),
        ('model_dir', '', 'model folder; empty: the default model'),
        ('device', 'auto', 'auto, cpu, cuda or cuda:N'),
        ('mode', 'rig', 'rig (calibration) or temporal (relocalization, sparse mapping)'),
        ('image_topics', '', 'comma-separated image topics, camera order'),
        ('camera_info_topics', '', 'comma-separated camera_info topics, same order'),
        ('seed_topic', '~/relocalization_seed', 'relocalization seeds, e.g. /initialpose'),
        ('namespace', '', 'node namespace'),
        ('use_sim_time', 'false', 'use /clock (bag replay)'),
        ('log_level', 'info', 'ROS log level'),
        ('enclave', '', 'SROS2 security enclave, e.g. /raydiff_ros/estimator; empty: none'),
    ]
    return LaunchDescription(
        [DeclareLaunchArgument(name, default_value=default, description=description)
         for name, default, description in arguments]
        + [OpaqueFunction(function=_estimator_node)])
