"""config/estimate.yaml is what the generator writes from the config dataclasses (no ROS here)."""

from dataclasses import asdict
import importlib.util
from pathlib import Path

import yaml

from raydiff_ros.pipeline.config import PipelineConfig
from raydiff_ros.ros.node_config import NodeConfig
from raydiff_ros.ros.node_parameters import ALL_PARAMETERS

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / 'config' / 'estimate.yaml'
GENERATOR = ROOT / 'tools' / 'write_estimate_config.py'


def _generator():
    spec = importlib.util.spec_from_file_location('write_estimate_config', GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_file_is_what_the_generator_writes(capsys):
    _generator().main()
    written = capsys.readouterr().out
    assert written == CONFIG.read_text(), (
        'config/estimate.yaml is stale: python tools/write_estimate_config.py > '
        'config/estimate.yaml'
    )


def test_the_file_lists_exactly_the_dataclass_defaults():
    listed = yaml.safe_load(CONFIG.read_text())['/**']['ros__parameters']
    defaults = {**asdict(NodeConfig()), **PipelineConfig().to_parameters()}
    assert listed == defaults
    assert all(type(listed[name]) is type(value) for name, value in defaults.items())


def _squeezed(text: str) -> str:
    return ''.join(text.split())  # comments are wrapped at spaces and hyphens


def test_each_comment_gives_the_description_range_choices_and_start_up_flag():
    comments, described = [], {}
    for line in CONFIG.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith('# ----'):
            comments = []
        elif stripped.startswith('#'):
            comments.append(stripped[1:])
        elif not stripped.endswith(':'):
            described[stripped.split(':')[0]] = _squeezed(''.join(comments))
            comments = []
    assert set(described) == {spec.name for spec in ALL_PARAMETERS}
    for name, _, info in ALL_PARAMETERS:
        comment = described[name]
        assert comment.startswith(_squeezed(info.text())), name
        assert (f'range{_squeezed(info.range_text())}' in comment) == info.has_range, name
        assert ('start-uponly' in comment) == info.read_only, name
        if info.choices:
            assert _squeezed('one of ' + ', '.join(info.choices)) in comment, name
    assert 'range(0.0,inf]' in described['stop_timeout_s']
    assert 'range[0.0,1.0)' in described['aspect_ratio_tolerance']
