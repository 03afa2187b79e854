"""`colcon build` of the package in a fresh workspace against the pip-installed ROS 2 underlay.

This is what a user does in a real ROS 2 workspace; it keeps CMakeLists.txt, package.xml and
setup.cfg (whose console scripts become `ros2 run` executables) from silently rotting.
"""

import os
from pathlib import Path
import shutil
import subprocess
import sys
import sysconfig

import pytest

# slow: both tests need the module's colcon build (10 to 18 s on 2 cores).
pytestmark = [pytest.mark.ros, pytest.mark.slow]

pytest.importorskip('rclpy', reason='rclpy is not installed (run: make test)')

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT_S = 900


def tracked_files() -> list[str]:
    result = subprocess.run(['git', 'ls-files', '--cached', '--others', '--exclude-standard'],
                            cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    return [line for line in result.stdout.splitlines()
            if (REPO_ROOT / line).is_file()]


@pytest.fixture(scope='module')
def workspace(tmp_path_factory) -> Path:
    colcon = Path(sys.prefix) / 'bin' / 'colcon'
    if not colcon.exists():
        pytest.skip('colcon is not installed in this environment')
    if shutil.which('git') is None or not (REPO_ROOT / '.git').exists():
        pytest.skip('needs a git checkout to know the package files')
    workspace = tmp_path_factory.mktemp('colcon_ws')
    package = workspace / 'src' / 'raydiff_ros'
    for name in tracked_files():
        target = package / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, target)
    env = dict(os.environ, AMENT_PREFIX_PATH=sys.prefix, CMAKE_PREFIX_PATH=sys.prefix,
               PYTHONDONTWRITEBYTECODE='1')
    result = subprocess.run(
        [str(colcon), 'build', '--event-handlers', 'console_cohesion-',
         '--cmake-args', '-DBUILD_TESTING=OFF', f'-DPython3_EXECUTABLE={sys.executable}'],
        cwd=workspace, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    log = result.stdout[-4000:] + result.stderr[-4000:]
    assert result.returncode == 0, f'colcon build failed:\n{log}'
    return workspace


def test_colcon_installs_package_interfaces_and_executables(workspace):
    install = workspace / 'install' / 'raydiff_ros'
    site = install / Path(sysconfig.get_path('purelib')).relative_to(sys.prefix)
    assert (site / 'raydiff_ros' / 'demos' / 'roundtrip.py').is_file()
    assert list((site / 'raydiff_ros' / 'msg').glob('_pose_graph.py'))
    assert list((site / 'raydiff_ros').glob('*rosidl_typesupport_c*.so'))
    assert (install / 'share' / 'raydiff_ros' / 'package.xml').is_file()
    assert (install / 'share' / 'raydiff_ros' / 'launch' / 'demo_roundtrip.launch.py').is_file()
    assert (install / 'share' / 'ament_index' / 'resource_index' / 'packages'
            / 'raydiff_ros').is_file()
    for executable in ('demo_talker', 'demo_listener'):
        assert os.access(install / 'lib' / 'raydiff_ros' / executable, os.X_OK), executable


def test_installed_package_runs_from_the_install_space(workspace):
    """Import the installed Python package and messages, not the source tree."""
    install = workspace / 'install' / 'raydiff_ros'
    site = install / Path(sysconfig.get_path('purelib')).relative_to(sys.prefix)
    probe = (
        'import raydiff_ros, raydiff_ros.msg, raydiff_ros.demos.roundtrip as d\n'
        'graph, tf = d.demo_messages(3, 2)\n'
        'print(raydiff_ros.msg.__file__)\n'
        'print(d.__file__)\n'
        'print(len(graph.nodes), len(tf.transforms))\n')
    env = dict(os.environ, PYTHONPATH=str(site),
               LD_LIBRARY_PATH=f'{install / "lib"}:{os.environ.get("LD_LIBRARY_PATH", "")}')
    result = subprocess.run([sys.executable, '-c', probe], env=env, cwd=workspace,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    msg_file, module_file, counts = result.stdout.split('\n')[:3]
    assert msg_file.startswith(str(site)) and module_file.startswith(str(site))
    assert counts == '2 1'
    launcher = install / 'lib' / 'raydiff_ros' / 'demo_talker'
    result = subprocess.run([str(launcher), '--help'], env=env, cwd=workspace,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and 'Publish the demo PoseGraph' in result.stdout
    # The console commands of raydiff_ros.cli, e.g. raydiff-compare, are launchers too.
    launcher = install / 'lib' / 'raydiff_ros' / 'raydiff-compare'
    result = subprocess.run([str(launcher), '--help'], env=env, cwd=workspace,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and 'usage: raydiff-compare' in result.stdout
