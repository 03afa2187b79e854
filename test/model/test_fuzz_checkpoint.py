"""Fuzzing of model folders: whatever is damaged, ``load_model`` raises ``CheckpointError``.

A tiny model is saved once; every example copies it and damages the copy (truncated or
byte-flipped safetensors, renamed or missing files, YAML that is not a config, config values
of the wrong type or absurd size, tensors of the wrong shape or dtype with a valid digest,
wrong format metadata). An undamaged copy must load.
"""

from pathlib import Path
import shutil
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
import pytest
from safetensors import safe_open
from safetensors.torch import save_file
import torch
import yaml

from raydiff_ros.model.checkpoint import (
    CONFIG_FILE,
    FORMAT_NAME,
    FORMAT_VERSION,
    WEIGHTS_FILE,
    CheckpointError,
    load_model,
    save_model,
    tensors_digest,
)

DAMAGE_EXAMPLES = 150
CONFIG_EXAMPLES = 100


def fuzz(examples: int) -> settings:
    """Settings of a fuzz test: a fixed number of examples, no per-example deadline."""
    return settings(max_examples=examples, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope='module')
def saved_model(tmp_path_factory, tiny_model) -> Path:
    folder = tmp_path_factory.mktemp('fuzz') / 'model'
    save_model(tiny_model, folder)
    return folder


def _read_tensors(folder: Path) -> tuple[dict, dict]:
    with safe_open(str(folder / WEIGHTS_FILE), framework='pt') as handle:
        return {key: handle.get_tensor(key) for key in handle.keys()}, handle.metadata()


def _rewrite(folder: Path, tensors: dict, metadata: dict) -> None:
    metadata = {**metadata, 'sha256': tensors_digest(tensors)}
    save_file(tensors, str(folder / WEIGHTS_FILE), metadata=metadata)


DAMAGES = ('truncate', 'flip', 'rename_weights', 'remove_config', 'tensor_shape',
           'tensor_dtype', 'drop_tensor', 'extra_tensor', 'metadata', 'config_text',
           'weights_directory')
DTYPES = (torch.int64, torch.int8, torch.bool, torch.float16, torch.float64, torch.uint8)


def _damage(folder: Path, kind: str, draw) -> None:
    weights, config = folder / WEIGHTS_FILE, folder / CONFIG_FILE
    data = bytearray(weights.read_bytes())
    if kind == 'truncate':
        weights.write_bytes(data[:draw(st.integers(0, len(data) - 1))])
    elif kind == 'flip':
        limit = draw(st.sampled_from([8, 200, len(data)]))
        for index in draw(st.lists(st.integers(0, min(limit, len(data)) - 1), min_size=1,
                                   max_size=6, unique=True)):
            data[index] ^= draw(st.integers(1, 255))
        weights.write_bytes(bytes(data))
    elif kind == 'rename_weights':
        weights.rename(folder / draw(st.sampled_from(['model.pt', 'model.safetensors.bak'])))
    elif kind == 'remove_config':
        config.unlink()
    elif kind == 'weights_directory':
        weights.unlink()
        weights.mkdir()
    elif kind == 'config_text':
        config.write_text(draw(st.one_of(
            st.text(max_size=100),
            st.sampled_from(['[1, 2', 'a: b: c', '- 1\n- 2', 'null', '{}: 3', '\t x']))))
    else:
        tensors, metadata = _read_tensors(folder)
        key = draw(st.sampled_from(sorted(tensors)))
        if kind == 'tensor_shape':
            tensors[key] = torch.zeros(tuple(draw(st.lists(st.integers(0, 5), max_size=3))))
        elif kind == 'tensor_dtype':
            tensors[key] = tensors[key].to(draw(st.sampled_from(DTYPES)))
        elif kind == 'drop_tensor':
            del tensors[key]
        elif kind == 'extra_tensor':
            tensors[key + draw(st.sampled_from(['.x', '_copy']))] = torch.zeros(2)
        elif kind == 'metadata':
            field = draw(st.sampled_from(['format', 'format_version']))
            metadata[field] = draw(st.text(max_size=5).filter(
                lambda text: text not in (FORMAT_NAME, FORMAT_VERSION)))
        _rewrite(folder, tensors, metadata)


@fuzz(DAMAGE_EXAMPLES)
@given(kind=st.sampled_from(DAMAGES), data=st.data())
def test_a_damaged_model_folder_raises_a_checkpoint_error(saved_model, tiny_model, kind,
                                                           data):
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / 'model'
        shutil.copytree(saved_model, folder)
        _damage(folder, kind, data.draw)
        try:
            model = load_model(folder)
        except CheckpointError as error:
            assert str(error)
            return
    # Only a flip of JSON whitespace in the header (its padding) may leave a loadable file,
    # and then every tensor is unchanged.
    assert kind == 'flip', kind
    for key, value in model.state_dict().items():
        assert torch.equal(value, tiny_model.state_dict()[key]), key


CONFIG_VALUES = st.one_of(
    st.none(), st.booleans(), st.text(max_size=6), st.floats(),
    st.integers(-3, 3), st.sampled_from([10**6, 10**9, 2**40, 2**63]),
    st.lists(st.integers(-2, 40), max_size=3), st.dictionaries(st.text(max_size=3), st.none()),
)


@fuzz(CONFIG_EXAMPLES)
@given(data=st.data())
def test_config_values_of_the_wrong_type_or_size_raise_a_checkpoint_error(saved_model, data):
    document = yaml.safe_load((saved_model / CONFIG_FILE).read_text())
    section = data.draw(st.sampled_from(sorted(document)))
    name = data.draw(st.sampled_from(sorted(document[section])))
    value = data.draw(CONFIG_VALUES.filter(lambda v: v != document[section][name]))
    document[section][name] = value
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / 'model'
        shutil.copytree(saved_model, folder)
        (folder / CONFIG_FILE).write_text(yaml.safe_dump(document))
        try:
            model = load_model(folder)
        except CheckpointError as error:
            assert str(error)
            return
    # A value that changes no stored tensor (a sampler setting, a sinusoid base, an eps) is a
    # valid config: the model is built with it.
    assert model.config.to_dict()[section][name] == value


def test_an_undamaged_copy_loads(saved_model, tmp_path):
    shutil.copytree(saved_model, tmp_path / 'model')
    assert load_model(tmp_path / 'model') is not None
