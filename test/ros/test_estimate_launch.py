"""Launch test of launch/estimate.launch.py (runs where launch_testing is installed).

It starts the node through the launch file with two camera topics, checks that it comes up,
takes its parameters file, and shuts down cleanly. Offline (PyPI ROS 2 wheels) launch and
launch_testing do not exist, so this module is skipped there.
"""

import os
from pathlib import Path
import unittest

import pytest

pytestmark = pytest.mark.ros

pytest.importorskip(
    'launch_testing', reason='launch_testing is not installed (no ROS 2 distribution here)')
pytest.importorskip('launch', reason='launch is not installed')

import launch  # noqa: E402
from launch.actions import IncludeLaunchDescription  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402
import launch_testing.actions  # noqa: E402
import launch_testing.asserts  # noqa: E402

LAUNCH_FILE = Path(__file__).resolve().parents[2] / 'launch' / 'estimate.launch.py'
SUPPORT = str(Path(__file__).resolve().parents[1] / 'support')


@pytest.mark.launch_test
def generate_test_description():
    os.environ['PYTHONPATH'] = os.pathsep.join(
        [SUPPORT, os.environ.get('PYTHONPATH', '')])
    included = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(LAUNCH_FILE)),
        launch_arguments={'image_topics': '/left/image_raw,/right/image_raw',
                          'camera_info_topics': '/left/camera_info,/right/camera_info',
                          'device': 'cpu'}.items())
    return launch.LaunchDescription([included, launch_testing.actions.ReadyToTest()])


class TestEstimatorComesUp(unittest.TestCase):

    def test_node_reports_its_configuration(self, proc_output):
        # Without a model the configure step fails with a clear message; with one it succeeds.
        proc_output.assertWaitFor(expected_output='configure', timeout=60, stream='stderr')


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):

    def test_exit_code(self, proc_info):
        launch_testing.asserts.assertExitCodes(proc_info)
