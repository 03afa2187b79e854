"""Python packaging of raydiff_ros (pip / editable installs).

In a ROS 2 workspace colcon builds this package with CMakeLists.txt (ament_cmake), which also
generates the interfaces in msg/. Metadata and console scripts live in setup.cfg, read by both.
"""

from setuptools import setup

setup()
