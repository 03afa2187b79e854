"""Building the node's estimator loads no dataset, training, evaluation or command module."""

import subprocess
import sys

import pytest

pytest.importorskip('rclpy', reason='rclpy is not installed (run: make test)')

PROBE = """
import sys
import raydiff_ros.ros.estimator_node
from raydiff_ros.ros.estimator_plugins import build_estimator
estimator = build_estimator('ray_diffusion', '', 'cpu', 'auto', 2, 0, 'bundle')
assert estimator.name == 'ray_diffusion+bundle', estimator.name
print(' '.join(sorted(m for m in sys.modules if m.startswith('raydiff_ros.'))))
"""
CONSUMERS = ('evaluation', 'data', 'training', 'cli', 'demos')


def test_the_node_with_the_shipped_model_and_a_refinement_loads_no_consumer():
    loaded = subprocess.run([sys.executable, '-c', PROBE], capture_output=True, text=True,
                            timeout=300, check=True).stdout.split()
    assert 'raydiff_ros.inference.engine' in loaded  # the probe did build the model
    assert [m for m in loaded if m.split('.')[1] in CONSUMERS] == []
