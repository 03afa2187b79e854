"""Checkpoints: our format round trip, damaged files, official-layout import and its errors."""

from __future__ import annotations

import json
import os
from pathlib import Path
import struct

import pytest
from safetensors.torch import save_file
import torch
import yaml

from raydiff_ros.cli import import_official
from raydiff_ros.model.checkpoint import (
    CONFIG_FILE,
    FORMAT_NAME,
    FORMAT_VERSION,
    WEIGHTS_FILE,
    CheckpointError,
    StateDictMismatchError,
    UnsafeCheckpointError,
    convert_official_state_dict,
    expected_state_shapes,
    find_official_checkpoint,
    load_model,
    load_official_state_dict,
    load_state,
    official_key_to_ours,
    our_key_to_official,
    save_model,
    save_model_dir,
    tensors_digest,
)
from raydiff_ros.model.config import (
    DenoiserConfig,
    RayDiffusionConfig,
    save_config_yaml,
    with_overrides,
)
from raydiff_ros.model.network import RayDiffusionModel

HYDRA_CONFIG = {
    'training': {'regression': False},
    'model': {'pred_x0': True, 'num_patches_x': 16, 'num_patches_y': 16, 'depth': 1,
              'num_images': 8, 'feature_extractor': 'dino', 'append_ndc': True},
    'noise_scheduler': {'type': 'linear', 'max_timesteps': 100, 'beta_start': 0.0001,
                        'beta_end': 0.2},
}


@pytest.fixture()
def saved(tmp_path, tiny_model):
    """Folder holding the tiny model in our format."""
    save_model(tiny_model, tmp_path / 'model')
    return tmp_path / 'model'


def write_weights(folder: Path, tensors, config: RayDiffusionConfig) -> None:
    """Write a weights file with valid metadata but arbitrary tensors (bypassing validation)."""
    folder.mkdir(parents=True, exist_ok=True)
    save_config_yaml(config, folder / CONFIG_FILE)
    save_file(dict(tensors), str(folder / WEIGHTS_FILE),
              metadata={'format': FORMAT_NAME, 'format_version': FORMAT_VERSION,
                        'sha256': tensors_digest(tensors)})


def test_round_trip_gives_identical_tensors_config_and_outputs(saved, tiny_model, make_inputs):
    config, state = load_state(saved)
    assert config == tiny_model.config
    reference = tiny_model.state_dict()
    assert set(state) == set(reference)
    assert all(torch.equal(state[k], reference[k]) for k in reference)
    loaded = load_model(saved)
    assert not loaded.training
    features, ndc = make_inputs(config, 2)
    x_t = torch.randn(1, 2, 6, 4, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(loaded(features[None], x_t, 7, ndc[None]),
                           tiny_model(features[None], x_t, 7, ndc[None]))
    # The rebuilt (unsaved) buffers equal the original ones.
    assert torch.equal(loaded.denoiser.token_pos_table, tiny_model.denoiser.token_pos_table)
    assert torch.equal(loaded.schedule.alphas_cumprod, tiny_model.schedule.alphas_cumprod)


def test_save_refuses_to_overwrite_unless_asked(saved, tiny_model):
    with pytest.raises(CheckpointError, match='exists'):
        save_model(tiny_model, saved)
    save_model(tiny_model, saved, overwrite=True)
    assert sorted(p.name for p in saved.iterdir()) == [CONFIG_FILE, WEIGHTS_FILE]


def test_truncated_weights_file(saved):
    path = saved / WEIGHTS_FILE
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointError, match='truncated or corrupt'):
        load_state(saved)


def test_corrupt_header_bytes(saved):
    path = saved / WEIGHTS_FILE
    data = bytearray(path.read_bytes())
    data[8:24] = b'#' * 16  # inside the JSON header
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match='truncated or corrupt'):
        load_state(saved)


def test_corrupt_data_bytes_fail_the_checksum(saved):
    path = saved / WEIGHTS_FILE
    data = bytearray(path.read_bytes())
    header_len = struct.unpack('<Q', bytes(data[:8]))[0]
    position = 8 + header_len + (len(data) - 8 - header_len) // 2
    data[position] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match='corrupt: the SHA-256'):
        load_state(saved)
    load_state(saved, verify=False)  # without verification the bytes load as they are


def test_missing_tensor_is_named(saved):
    config, state = load_state(saved)
    del state['denoiser.blocks.1.attn.qkv.bias']
    write_weights(saved, state, config)
    with pytest.raises(StateDictMismatchError, match=r'missing tensors \(1\): '
                                                     r'denoiser\.blocks\.1\.attn\.qkv\.bias'):
        load_state(saved)


def test_unexpected_tensor_is_named(saved):
    config, state = load_state(saved)
    state['denoiser.extra_head.weight'] = torch.zeros(3)
    write_weights(saved, state, config)
    with pytest.raises(StateDictMismatchError,
                       match=r'unexpected tensors \(1\): denoiser\.extra_head\.weight'):
        load_state(saved)


def test_wrong_shape_is_named(saved):
    config, state = load_state(saved)
    state['backbone.pos_embed'] = torch.zeros(1, 10, 32)
    write_weights(saved, state, config)
    with pytest.raises(StateDictMismatchError,
                       match=r'backbone\.pos_embed \(shape \(1, 10, 32\), expected \(1, 26, 32\)'):
        load_state(saved)


def test_config_that_does_not_fit_the_weights(saved):
    config, _ = load_state(saved)
    deeper = with_overrides(config, denoiser={'depth': 3})
    save_config_yaml(deeper, saved / CONFIG_FILE)
    with pytest.raises(StateDictMismatchError) as info:
        load_state(saved)
    assert 'denoiser.blocks.2.attn.qkv.weight' in info.value.missing
    (saved / CONFIG_FILE).write_text('denoiser: {depth: -1}\n')
    with pytest.raises(CheckpointError, match='not a valid model config'):
        load_state(saved)


def test_foreign_safetensors_and_missing_files(saved, tmp_path):
    config, state = load_state(saved)
    save_file(state, str(saved / WEIGHTS_FILE))  # no metadata
    with pytest.raises(CheckpointError, match=f'not a {FORMAT_NAME} file'):
        load_state(saved)
    with pytest.raises(CheckpointError, match='not found'):
        load_state(tmp_path / 'nowhere')


# --------------------------------------------------------------------------------------------
# official layout

class RunsCode:
    """Unpickling this object would create a folder (it must never happen)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_pickle_that_needs_code_is_refused(tmp_path):
    marker = tmp_path / 'code_ran'
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {'a': torch.zeros(2)}, 'payload': RunsCode(marker)}, path)
    with pytest.raises(UnsafeCheckpointError, match='needs code execution.*posix.mkdir'):
        load_official_state_dict(path)
    assert not marker.exists()


def test_truncated_and_corrupt_official_files(tmp_path):
    path = tmp_path / 'ckpt.pth'
    torch.save({'state_dict': {'w': torch.randn(256, 64)}}, path)
    good = path.read_bytes()
    assert load_official_state_dict(path)['w'].shape == (256, 64)
    path.write_bytes(good[:len(good) // 2])
    with pytest.raises(CheckpointError, match='truncated or corrupt'):
        load_official_state_dict(path)
    damaged = bytearray(good)
    middle = len(good) // 2
    damaged[middle:middle + 32] = bytes(b ^ 0xFF for b in damaged[middle:middle + 32])
    path.write_bytes(bytes(damaged))
    with pytest.raises(CheckpointError, match='CRC-32 mismatch'):
        load_official_state_dict(path)
    path.write_bytes(b'definitely not a checkpoint' * 10)
    with pytest.raises(CheckpointError, match='corrupt'):
        load_official_state_dict(path)


def test_official_file_without_state_dict(tmp_path):
    path = tmp_path / 'ckpt.pth'
    torch.save({'model': {'w': torch.zeros(1)}}, path)
    with pytest.raises(CheckpointError, match="no 'state_dict' entry"):
        load_official_state_dict(path)
    torch.save({'state_dict': {'w': 3}}, path)
    with pytest.raises(CheckpointError, match='not named tensors'):
        load_official_state_dict(path)


def official_depth1_config() -> RayDiffusionConfig:
    return RayDiffusionConfig(denoiser=DenoiserConfig(depth=1))


def official_meta_state(config: RayDiffusionConfig):
    """Official-named tensors on the meta device (shapes only) for the given config."""
    with torch.device('meta'):
        model = RayDiffusionModel(config)
    state = {our_key_to_official(k): v for k, v in model.state_dict().items()}
    weight = state['ray_predictor.x_embedder.proj.weight']
    state['ray_predictor.x_embedder.proj.weight'] = weight.reshape(*weight.shape, 1, 1)
    state['feature_extractor.model.mask_token'] = torch.empty(1, 384, device='meta')
    return state


def test_official_key_rule():
    assert official_key_to_ours('feature_extractor.model.blocks.3.ls1.gamma') == \
        'backbone.blocks.3.ls1.gamma'
    assert official_key_to_ours('ray_predictor.x_embedder.proj.weight') == \
        'denoiser.x_embedder.weight'
    assert official_key_to_ours('ray_predictor.blocks.0.adaLN_modulation.1.bias') == \
        'denoiser.blocks.0.adaLN_modulation.1.bias'
    assert official_key_to_ours('feature_extractor.model.mask_token') is None
    assert official_key_to_ours('noise_scheduler.betas') is None
    assert our_key_to_official('denoiser.x_embedder.bias') == \
        'ray_predictor.x_embedder.proj.bias'


@pytest.mark.parametrize('change,message', [
    ('drop', r'missing tensors \(1\): ray_predictor\.blocks\.0\.mlp\.fc2\.weight'),
    ('extra', r'unexpected tensors \(1\): ray_predictor\.blocks\.1\.mlp\.fc2\.weight'),
    ('shape', r'wrong shape/dtype \(1\): feature_extractor\.model\.norm\.weight '
              r'\(shape \(385,\), expected \(384,\)\)'),
    ('dtype', r'ray_predictor\.final_layer\.linear\.bias \(dtype torch\.int64'),
    ('kernel', r'ray_predictor\.x_embedder\.proj\.weight .*1x1 kernel'),
])
def test_official_mismatches_are_named_in_official_keys(change, message):
    config = official_depth1_config()
    state = official_meta_state(config)
    if change == 'drop':
        del state['ray_predictor.blocks.0.mlp.fc2.weight']
    elif change == 'extra':
        state['ray_predictor.blocks.1.mlp.fc2.weight'] = torch.empty(1152, 4608, device='meta')
    elif change == 'shape':
        state['feature_extractor.model.norm.weight'] = torch.empty(385, device='meta')
    elif change == 'dtype':
        state['ray_predictor.final_layer.linear.bias'] = torch.zeros(6, dtype=torch.long)
    elif change == 'kernel':
        state['ray_predictor.x_embedder.proj.weight'] = torch.empty(1152, 392, 3, 3,
                                                                    device='meta')
    with pytest.raises(StateDictMismatchError, match=message):
        convert_official_state_dict(state, config)


def test_official_derived_buffers_must_match_the_config():
    config = official_depth1_config()
    state = official_meta_state(config)
    state['noise_scheduler.betas'] = torch.linspace(1e-4, 0.02, 100)  # a 1000-step-style beta
    with pytest.raises(StateDictMismatchError, match=r'noise_scheduler\.betas \(differs'):
        convert_official_state_dict(state, config)


def test_import_of_a_small_official_release(tmp_path, capsys):
    """Full path on a depth-1 official-shaped model (about 50 M values): hydra config +
    checkpoint -> importer CLI -> our format -> model; buffers come along and are checked."""
    config = official_depth1_config()
    release = tmp_path / 'release'
    (release / 'hydra').mkdir(parents=True)
    (release / 'hydra' / 'config.yaml').write_text(yaml.safe_dump(HYDRA_CONFIG))
    (release / 'checkpoints').mkdir()
    generator = torch.Generator().manual_seed(0)
    state = {k: torch.randn(v.shape, generator=generator)
             for k, v in official_meta_state(config).items()}
    with torch.device('meta'):
        reference = RayDiffusionModel(config)
    for name, buffer in reference.named_buffers():
        official = {'schedule.betas': 'noise_scheduler.betas',
                    'schedule.alphas': 'noise_scheduler.alphas',
                    'schedule.alphas_cumprod': 'noise_scheduler.alphas_cumprod',
                    'denoiser.image_pos_table': 'ray_predictor.x_pos_enc.image_pos_table',
                    'denoiser.token_pos_table': 'ray_predictor.x_pos_enc.token_pos_table'}[name]
        state[official] = buffer.reshape(1, *buffer.shape) if 'pos' in name else buffer
    torch.save({'state_dict': state, 'iteration': 300000},
               release / 'checkpoints' / 'ckpt_00300000.pth')
    torch.save({'state_dict': {}}, release / 'checkpoints' / 'ckpt_00000010.pth')
    assert find_official_checkpoint(release).name == 'ckpt_00300000.pth'
    assert find_official_checkpoint(release, 10).name == 'ckpt_00000010.pth'

    out = tmp_path / 'converted'
    assert import_official.main([str(release), str(out)]) == 0
    assert 'ckpt_00300000.pth' in capsys.readouterr().out
    model = load_model(out)
    assert model.config == config
    assert torch.equal(model.denoiser.x_embedder.weight,
                       state['ray_predictor.x_embedder.proj.weight'][:, :, 0, 0])
    assert torch.equal(model.backbone.blocks[11].ls2.gamma,
                       state['feature_extractor.model.blocks.11.ls2.gamma'])
    # Existing output is kept unless --overwrite; a bad step or folder exits with status 1.
    assert import_official.main([str(release), str(out)]) == 1
    assert 'exists' in capsys.readouterr().err
    assert import_official.main([str(release), str(out), '--step', '5']) == 1
    assert 'ckpt_00000005.pth not found' in capsys.readouterr().err
    assert import_official.main([str(tmp_path / 'nowhere'), str(out)]) == 1
    assert 'raydiff-import-official: error:' in capsys.readouterr().err
    # Bad arguments are a usage error (2), returned rather than raised as SystemExit.
    assert import_official.main([str(release)]) == 2
    assert 'out_dir' in capsys.readouterr().err
    # The older, empty checkpoint fails with every official tensor named as missing.
    assert import_official.main([str(release), str(out), '--step', '10', '--overwrite']) == 1
    err = capsys.readouterr().err
    assert f'missing tensors ({len(expected_state_shapes(config))})' in err
    assert 'feature_extractor.model.blocks.0.attn.proj.weight' in err


def test_save_validates_the_state(tmp_path, tiny_model):
    state = dict(tiny_model.state_dict())
    state.pop('backbone.norm.bias')
    with pytest.raises(StateDictMismatchError, match=r'backbone\.norm\.bias'):
        save_model_dir(tmp_path / 'm', state, tiny_model.config)
    assert not (tmp_path / 'm' / WEIGHTS_FILE).exists()


def test_weights_metadata_records_format_and_digest(saved):
    with open(saved / WEIGHTS_FILE, 'rb') as handle:
        header_len = struct.unpack('<Q', handle.read(8))[0]
        header = json.loads(handle.read(header_len))
    metadata = header['__metadata__']
    assert metadata['format'] == FORMAT_NAME and metadata['format_version'] == FORMAT_VERSION
    _, state = load_state(saved)
    assert metadata['sha256'] == tensors_digest(state)
