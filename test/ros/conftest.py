"""Fixtures of the tests that run the estimator node in its own process over rclpy/DDS."""

from typing import Optional

import pytest


@pytest.fixture
def ros():
    """rclpy initialised for the test's probe node, shut down after it."""
    rclpy = pytest.importorskip('rclpy', reason='rclpy is not installed (run: make test)')
    rclpy.init()
    yield
    rclpy.try_shutdown()


@pytest.fixture
def run_node(tmp_path, ros):
    """``run(params, num_cameras=None)``: start the node with ``params`` and a probe of
    ``num_cameras`` cameras (default: ``params['num_cameras']``), wait until the node is up and
    return (process, probe); every node started is stopped after the test."""
    from node_probe import Probe, start_node, stop_node
    started = []

    def run(params: dict, num_cameras: Optional[int] = None):
        process = start_node(params, tmp_path)
        probe = Probe(params['num_cameras'] if num_cameras is None else num_cameras)
        started.append((process, probe))
        assert probe.wait_for_node(), stop_node(process)
        return process, probe

    yield run
    for process, probe in started:
        probe.close()
        stop_node(process)
