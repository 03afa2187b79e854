"""The pose-diffusion model: config, checkpoints, guidance, sampler and an overfitting check."""

import numpy as np
import pytest
import torch

from raydiff_ros.geometry.camera_encoding import decode_cameras, encode_cameras
from raydiff_ros.geometry.epipolar import sampson_errors
from raydiff_ros.geometry.transforms import axis_angle_rotations
from raydiff_ros.model.checkpoint import CheckpointError, load_model
from raydiff_ros.model.config import BackboneConfig, ConfigError
from raydiff_ros.model.pose_diffusion import (
    Correspondences,
    PoseDenoiserConfig,
    PoseDiffusionConfig,
    PoseDiffusionModel,
    PoseGuidanceConfig,
    SampsonGuidance,
    load_pose_model,
    pose_config_for_preset,
    pose_config_from_dict,
    pose_diffusion_loss,
    sample_cameras,
    save_pose_model,
)

FEATURE_DIM = 32


def tiny_pose_config(rotation: str = '6d') -> PoseDiffusionConfig:
    return PoseDiffusionConfig(
        backbone=BackboneConfig(image_size=28, embed_dim=FEATURE_DIM, depth=1, num_heads=2,
                                pos_embed_grid=5),
        pose_denoiser=PoseDenoiserConfig(depth=2, hidden_size=32, num_heads=2, num_patches=2,
                                         feature_dim=FEATURE_DIM, rotation=rotation))


def tiny_pose_model(rotation: str = '6d', seed: int = 0) -> PoseDiffusionModel:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return PoseDiffusionModel(tiny_pose_config(rotation)).eval()


def test_config_round_trip_presets_and_refusals():
    config = tiny_pose_config('quaternion')
    assert pose_config_from_dict(config.to_dict()) == config
    assert config.pose_denoiser.camera_dim == 8
    assert PoseDiffusionConfig().pose_denoiser.camera_dim == 10
    lite = pose_config_for_preset('lite', denoiser={'depth': 2})
    assert lite.backbone.kind == 'efficientnet_lite0'
    assert lite.pose_denoiser.feature_dim == lite.backbone.feature_dim
    assert (lite.pose_denoiser.num_patches, lite.pose_denoiser.depth) == (8, 2)
    # the sampler runs from t = 99 to t = 0 on the ray models' schedule grid
    assert PoseDiffusionModel(tiny_pose_config()).schedule.sampling_timesteps()[-1] == 0
    with pytest.raises(ConfigError, match='rotation'):
        PoseDenoiserConfig(rotation='euler')
    with pytest.raises(ConfigError, match='not a pose-diffusion config'):
        pose_config_from_dict({'backbone': {}})
    with pytest.raises(ConfigError, match='feature_dim'):
        PoseDiffusionConfig(pose_denoiser=PoseDenoiserConfig(feature_dim=7))


def test_checkpoint_round_trip_and_loaders_refuse_each_others_models(tmp_path):
    model = tiny_pose_model()
    save_pose_model(model, tmp_path / 'pose')
    loaded = load_pose_model(tmp_path / 'pose')
    features = torch.randn(2, 3, FEATURE_DIM, 2, 2, generator=torch.Generator().manual_seed(0))
    cameras = torch.randn(2, 3, 10, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(loaded(features, cameras, 7), model(features, cameras, 7),
                              atol=1e-6)
    with pytest.raises(CheckpointError):
        load_model(tmp_path / 'pose')          # the ray loader refuses a pose model
    with pytest.raises(CheckpointError, match='exists'):
        save_pose_model(model, tmp_path / 'pose')
    weights = tmp_path / 'pose' / 'model.safetensors'
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0xFF                             # corrupt one byte of tensor data
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match='corrupt'):
        load_pose_model(tmp_path / 'pose')


def two_view_encodings(rotation: str = '6d'):
    """True camera encodings (1, 2, D), K (2, 3, 3) and exact correspondences."""
    rng = np.random.default_rng(0)
    R = np.stack([np.eye(3), axis_angle_rotations(np.array([[0.2, 1.0, 0.1]]), 0.4)[0]])
    centers = np.array([[0.0, 0.0, 0.0], [1.0, 0.2, 0.1]])
    t = -np.einsum('nij,nj->ni', R, centers)
    K = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])
    points = rng.uniform([-2, -2, 5], [2, 2, 9], size=(60, 3))
    pixels = []
    for n in range(2):
        image = (points @ R[n].T + t[n]) @ K.T
        pixels.append(torch.from_numpy(image[:, :2] / image[:, 2:]))
    encoding = encode_cameras(torch.from_numpy(R), torch.from_numpy(t),
                              torch.full((2,), 2.5, dtype=torch.float64), rotation)
    matches = Correspondences(torch.zeros(60, dtype=torch.long),
                              torch.ones(60, dtype=torch.long), pixels[0], pixels[1])
    return encoding[None], torch.from_numpy(np.stack([K, K])), matches


def mean_sampson(encoding: torch.Tensor, K: torch.Tensor, matches: Correspondences,
                 rotation: str) -> torch.Tensor:
    R, t, _ = decode_cameras(encoding, rotation)
    return sampson_errors(R, t, K, matches.pair_i, matches.pair_j, matches.points_i,
                          matches.points_j).mean(dim=-1)


@pytest.mark.parametrize('rotation', ['6d', 'quaternion'])
def test_guidance_steps_reduce_the_sampson_error_of_exact_correspondences(rotation):
    truth, K, matches = two_view_encodings(rotation)
    assert mean_sampson(truth, K, matches, rotation).max() < 1e-6
    generator = torch.Generator().manual_seed(3)
    perturbation = 0.08 * torch.randn(truth.shape, generator=generator, dtype=torch.float64)
    perturbation[:, 0] = 0.0                                 # camera 0 is the gauge
    perturbed = (truth + perturbation).repeat(2, 1, 1)
    perturbed[1, 1, :3] += 0.3                               # a second, different sample
    before = mean_sampson(perturbed, K, matches, rotation)
    assert before.min() > 1.0
    guidance = SampsonGuidance(K, matches, rotation, PoseGuidanceConfig(iterations=100))
    guided = guidance(perturbed)
    after = mean_sampson(guided, K, matches, rotation)
    # measured: 6d 19.4 -> 0.58 and 5.4 -> 3.0 px; quaternion 25.7 -> 0.91 and 50.8 -> 2.6 px
    # (plain gradient steps converge slowly along the translation)
    assert after[0] < 0.1 * before[0] and after[1] < 0.7 * before[1], (before, after)
    assert torch.allclose(guided[:, 0], perturbed[:, 0], rtol=0, atol=1e-12)  # camera 0 held
    assert torch.allclose(guided[..., -1], perturbed[..., -1], rtol=0, atol=1e-12)  # focal
    assert guidance.losses[-1] < guidance.losses[0]
    assert all(np.diff(guidance.losses) <= 1e-9)


def test_sampler_with_known_focal_and_guidance():
    model = tiny_pose_model()
    _, K, matches = two_view_encodings()
    features = torch.randn(2, FEATURE_DIM, 2, 2, generator=torch.Generator().manual_seed(5))
    batch = features.expand(3, *features.shape)
    known = torch.log(torch.tensor([2.5, 2.5]))

    def run(guide):
        return sample_cameras(model, batch, generator=torch.Generator().manual_seed(0),
                              known_log_focal=known, guide=guide, guided_last_steps=2)

    plain = run(None)
    assert plain.cameras.shape == (3, 2, 10) and plain.num_steps == 10
    assert torch.allclose(plain.cameras[..., -1], known.expand(3, 2))
    assert plain.guided_steps == 0
    guidance = SampsonGuidance(K.float(), matches, '6d', PoseGuidanceConfig(iterations=10))
    guided = run(guidance)
    assert guided.guided_steps == 2
    assert torch.all(guidance.loss(guided.cameras.double())
                     < guidance.loss(plain.cameras.double()))
    # eta > 0 draws noise: another result from the same x_T
    noisy = sample_cameras(model, batch, generator=torch.Generator().manual_seed(0), eta=1.0)
    assert not torch.allclose(noisy.cameras, plain.cameras)


def test_a_tiny_model_overfits_one_batch():
    """The x0 loss on fixed timesteps and noise falls at least 10x in 300 Adam steps."""
    model = tiny_pose_model(seed=1).train()
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(4, 3, FEATURE_DIM, 2, 2, generator=generator)
    x0 = torch.randn(4, 3, 10, generator=generator) * 0.5
    t_eval = torch.tensor([0, 30, 60, 99])
    noise_eval = torch.randn(x0.shape, generator=generator)

    def eval_loss() -> float:
        with torch.no_grad():
            return float(pose_diffusion_loss(model, features, x0, t_eval, noise_eval))

    initial = eval_loss()
    optimizer = torch.optim.Adam(model.denoiser.parameters(), lr=3e-3)
    for _ in range(300):
        t = torch.randint(0, 100, (4,), generator=generator)
        noise = torch.randn(x0.shape, generator=generator)
        loss = pose_diffusion_loss(model, features, x0, t, noise)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    final = eval_loss()
    assert final < 0.1 * initial, (initial, final)
