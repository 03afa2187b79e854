"""Print pip constraints pinning every real PyPI distribution installed in this environment.

The ROS 2 wheels also register one metadata entry per ROS package (``rclpy``, ``std_msgs``, ...)
that is not a PyPI distribution; those are left out (their ``ros-*`` wheels are pinned).
"""

from importlib import metadata
import re

NOT_ON_PYPI = re.compile(
    r'^(action_msgs|ament_cmake_test|builtin_interfaces|rcl_interfaces|rclpy|rcutils|'
    r'rmw_[a-z_]+|rosgraph_msgs|rosidl_[a-z_]+|service_msgs|type_description_interfaces|'
    r'unique_identifier_msgs|[a-z0-9_]+_msgs|[a-z0-9_]+_srvs|pip|raydiff[-_]ros)$')


def main() -> None:
    pins = {}
    for dist in metadata.distributions():
        name = dist.metadata['Name']
        if name and not NOT_ON_PYPI.match(name):
            pins[name.lower()] = dist.version.split('+')[0]
    print('# Exact pins of every package in the development virtual environment '
          '(pip constraints).')
    print('# Regenerate with: make constraints')
    for name in sorted(pins):
        print(f'{name}=={pins[name]}')


if __name__ == '__main__':
    main()
