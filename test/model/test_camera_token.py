"""The camera-ray-token model: rotation parameterisation, shapes, objective, checkpoints, and
that a tiny model learns one batch."""

import math

import pytest
from scipy.spatial.transform import Rotation
from tiny_camera_token import random_camera_token_model, tiny_camera_token_config
from tiny_models import random_model, tiny_config
import torch
import yaml

from raydiff_ros.model.camera_token import (
    CameraTokenConfig,
    CameraTokenModel,
    CameraTokenOutput,
    camera_token_config_from_dict,
    camera_token_losses,
    camera_token_preset,
    load_camera_token_model,
    rotation_from_6d,
    rotation_to_6d,
    save_camera_token_model,
)
from raydiff_ros.model.checkpoint import CheckpointError, load_model, save_model
from raydiff_ros.model.config import ConfigError

B, N = 2, 3
OVERFIT_STEPS = 60
OVERFIT_LR = 3e-3
REQUIRED_POSE_LOSS_FACTOR = 5.0
"""The pose loss (rotation + translation) of one memorised batch must fall at least this much."""


def random_batch(config, seed: int = 1):
    """features (B, N, F, P, P), ndc (B, N, 2, P, P), R (B, N, 3, 3), t (B, N, 3), rays."""
    generator = torch.Generator().manual_seed(seed)
    P, F = config.denoiser.num_patches, config.denoiser.feature_dim
    features = torch.randn((B, N, F, P, P), generator=generator)
    ndc = torch.rand((B, N, 2, P, P), generator=generator) * 2 - 1
    R = torch.from_numpy(Rotation.random(B * N, random_state=seed).as_matrix()).float()
    R = R.reshape(B, N, 3, 3)
    R[:, 0] = torch.diag(torch.tensor([-1.0, -1.0, 1.0]))   # camera 0 as normalised
    t = torch.randn((B, N, 3), generator=generator)
    rays = torch.randn((B, N, 6, P, P), generator=generator)
    return features, ndc, R, t, rays


def test_6d_of_known_vectors():
    x = torch.tensor([[2.0, 0.0, 0.0, 1.0, 3.0, 0.0],      # a1 along x, a2 in the xy plane
                      [0.0, 0.0, 5.0, 1.0, 0.0, 0.0]])     # b1 = z, b2 = x, b3 = z x x = y
    R = rotation_from_6d(x)
    expected = torch.tensor([[[1.0, 0, 0], [0, 1, 0], [0, 0, 1]],
                             [[0.0, 1, 0], [0, 0, 1], [1, 0, 0]]])
    torch.testing.assert_close(R, expected, atol=1e-6, rtol=0)


def test_6d_round_trip_and_validity():
    R = torch.from_numpy(Rotation.random(64, random_state=0).as_matrix()).reshape(4, 16, 3, 3)
    torch.testing.assert_close(rotation_from_6d(rotation_to_6d(R)), R, atol=1e-12, rtol=0)
    x = torch.randn(5, 7, 6, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    Q = rotation_from_6d(x)
    torch.testing.assert_close(Q @ Q.transpose(-1, -2), torch.eye(3, dtype=torch.float64)
                               .expand_as(Q), atol=1e-12, rtol=0)
    torch.testing.assert_close(torch.linalg.det(Q), torch.ones(5, 7, dtype=torch.float64))
    # the first column keeps the direction of a1
    a1 = x[..., :3] / x[..., :3].norm(dim=-1, keepdim=True)
    torch.testing.assert_close(Q[..., :, 0], a1)
    with pytest.raises(ValueError, match='6'):
        rotation_from_6d(torch.zeros(3, 5))


def test_forward_shapes_and_attention_across_views():
    config = tiny_camera_token_config(depth=2)
    model = random_camera_token_model(config)
    features, ndc, *_ = random_batch(config)
    output = model(features, ndc)
    P = config.denoiser.num_patches
    assert output.rotation.shape == (B, N, 3, 3) and output.translation.shape == (B, N, 3)
    assert output.rotation_6d.shape == (B, N, 6) and output.rays.shape == (B, N, 6, P, P)
    eye = torch.eye(3).expand(B, N, 3, 3)
    torch.testing.assert_close(output.rotation @ output.rotation.transpose(-1, -2), eye,
                               atol=1e-5, rtol=0)
    # view 1's camera token reads view 2's patches
    changed = features.clone()
    changed[:, 2] += 1.0
    other = model(changed, ndc)
    assert (other.translation[:, 1] - output.translation[:, 1]).abs().max() > 1e-4
    with pytest.raises(ValueError, match='ndc'):
        model(features, None)
    with pytest.raises(ValueError, match='features'):
        model(features[:, :, :5], ndc)


def test_initialised_model_predicts_identity_and_zero():
    config = tiny_camera_token_config()
    model = CameraTokenModel(config)
    model.transformer.initialize()
    features, ndc, *_ = random_batch(config)
    output = model(features, ndc)
    torch.testing.assert_close(output.rotation, torch.eye(3).expand(B, N, 3, 3))
    assert output.translation.abs().max() < 1e-6 and output.rays.abs().max() < 1e-6


def test_each_camera_token_carries_its_own_image_from_the_start():
    # Initialised blocks are identities (adaLN-Zero), so a camera token reaches the heads as it
    # entered: it must already depend on its own image (the pooled patches), else every view
    # but the reference starts alike and training collapsed to one rotation for all views.
    config = tiny_camera_token_config()
    model = CameraTokenModel(config)
    model.transformer.initialize()
    with torch.no_grad():   # heads that read the token (initialised ones output a constant)
        model.transformer.rotation_head[-1].weight.normal_(generator=torch.Generator()
                                                           .manual_seed(1))
    features, ndc, *_ = random_batch(config)
    swapped = features.clone()
    swapped[:, [1, 2]] = features[:, [2, 1]]
    out, out_swapped = model(features, ndc), model(swapped, ndc)
    # Views 1 and 2 share the learned token; their image positions differ, so compare the
    # change of view 1 when only its own image changes.
    assert (out.rotation_6d[:, 1] - out_swapped.rotation_6d[:, 1]).abs().max() > 1e-3
    torch.testing.assert_close(out.rotation_6d[:, 0], out_swapped.rotation_6d[:, 0])


def test_losses_of_known_errors():
    angle = 0.3
    R_true = torch.eye(3).expand(1, 2, 3, 3)
    R_pred = torch.from_numpy(Rotation.from_rotvec([0, 0, angle]).as_matrix()).float()
    R_pred = torch.stack([torch.eye(3), R_pred])[None]
    t_true = torch.zeros(1, 2, 3)
    t_pred = torch.tensor([[[0.0, 0, 0], [3.0, 4.0, 0]]])       # squared distances 0 and 25
    rays = torch.zeros(1, 2, 6, 2, 2)
    output = CameraTokenOutput(R_pred, t_pred, rotation_to_6d(R_pred), rays + 0.5)
    weights = CameraTokenConfig(rotation_weight=2.0, translation_weight=0.1, ray_weight=3.0)
    losses = camera_token_losses(output, R_true, t_true, rays, weights)
    expected_rotation = 4 * (1 - math.cos(angle)) / 2     # |R - I|_F^2, mean over 2 views
    assert losses['rotation'].item() == pytest.approx(expected_rotation, rel=1e-5)
    assert losses['translation'].item() == pytest.approx(12.5, rel=1e-6)
    assert losses['rays'].item() == pytest.approx(0.25, rel=1e-6)
    assert losses['total'].item() == pytest.approx(
        2.0 * expected_rotation + 0.1 * 12.5 + 3.0 * 0.25, rel=1e-5)
    assert 'rays' not in camera_token_losses(output, R_true, t_true, None, weights)
    with pytest.raises(ValueError, match='need R'):
        camera_token_losses(output, R_true[:, :1], t_true, rays, weights)


def test_tiny_model_memorises_one_batch():
    torch.manual_seed(0)
    config = tiny_camera_token_config(depth=2)
    model = CameraTokenModel(config)
    model.transformer.initialize()
    features, ndc, R, t, rays = random_batch(config, seed=3)
    optimizer = torch.optim.Adam(model.transformer.parameters(), lr=OVERFIT_LR)

    def losses():
        return camera_token_losses(model(features, ndc), R, t, rays, config.camera_token)

    with torch.no_grad():
        start = losses()
    for _ in range(OVERFIT_STEPS):
        optimizer.zero_grad()
        losses()['total'].backward()
        optimizer.step()
    with torch.no_grad():
        end = losses()
    pose_before = float(start['rotation'] + start['translation'])
    pose_after = float(end['rotation'] + end['translation'])
    assert pose_after * REQUIRED_POSE_LOSS_FACTOR < pose_before, (pose_before, pose_after)
    assert float(end['rays']) < float(start['rays'])


def test_config_presets_and_errors():
    lite = camera_token_preset('lite', camera_token={'ray_weight': 0.5})
    assert lite.backbone.kind == 'efficientnet_lite0' and lite.denoiser.num_patches == 8
    assert lite.camera_token == CameraTokenConfig(ray_weight=0.5)
    assert camera_token_config_from_dict(lite.to_dict()) == lite
    with pytest.raises(ConfigError, match="no 'camera_token' section"):
        camera_token_config_from_dict({'backbone': {}, 'denoiser': {}})
    with pytest.raises(ConfigError, match='diffusion'):
        camera_token_config_from_dict({'camera_token': {}, 'diffusion': {}})
    with pytest.raises(ConfigError, match='ray_weight'):
        CameraTokenConfig(ray_weight=-1.0)
    with pytest.raises(ConfigError, match='section'):
        camera_token_preset('lite', diffusion={})


def test_checkpoint_round_trip_and_refusals(tmp_path):
    config = tiny_camera_token_config()
    model = random_camera_token_model(config, seed=5)
    save_camera_token_model(model, tmp_path / 'ct')
    assert yaml.safe_load((tmp_path / 'ct' / 'config.yaml').read_text())['camera_token']
    loaded = load_camera_token_model(tmp_path / 'ct')
    assert loaded.config == config
    features, ndc, *_ = random_batch(config)
    with torch.no_grad():
        a, b = model(features, ndc), loaded(features, ndc)
    torch.testing.assert_close(a.rotation, b.rotation)
    torch.testing.assert_close(a.translation, b.translation)
    with pytest.raises(CheckpointError, match='exists'):
        save_camera_token_model(model, tmp_path / 'ct')
    # each loader refuses the other model kind
    with pytest.raises(CheckpointError, match='camera_token'):
        load_model(tmp_path / 'ct')
    save_model(random_model(tiny_config()), tmp_path / 'ray')
    with pytest.raises(CheckpointError, match='camera_token'):
        load_camera_token_model(tmp_path / 'ray')
    # corrupt tensor bytes are caught by the recorded SHA-256
    weights = tmp_path / 'ct' / 'model.safetensors'
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match='corrupt'):
        load_camera_token_model(tmp_path / 'ct')
