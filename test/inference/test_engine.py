"""The engine recovers true cameras from true rays, and rejects bad input with clear errors."""

import threading

from inference_helpers import oracle_for, random_model, rig_images, tiny_config
import numpy as np
import pytest

from raydiff_ros.estimation import EstimationError, ViewSetInput
from raydiff_ros.inference.engine import EngineConfig, RayDiffusionEngine

POSE_ATOL = 1e-4
K_RTOL = 1e-3
# Camera 0 is the reference: in every sample its pose is inv(W0) @ W0 = I up to float64 rounding
# (~1e-16), but the geodesic angle arccos((trace - 1) / 2) turns a rounding error eps of that
# cosine into about sqrt(2 eps) rad (7e-7 deg measured for eps ~ 1e-16, depending on BLAS and
# SIMD). 1e-5 deg allows eps up to 1.5e-14, about 100 ulps; real spreads here are > 1e-2 deg.
REFERENCE_SPREAD_DEG = 1e-5


def true_reference_poses(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """camera0_T_camera of world-to-camera (R, t), scaled to the engine's unit baseline."""
    camera_T_world = np.tile(np.eye(4), (len(R), 1, 1))
    camera_T_world[:, :3, :3], camera_T_world[:, :3, 3] = R, t
    poses = camera_T_world[0] @ np.linalg.inv(camera_T_world)
    poses[:, :3, 3] /= np.linalg.norm(poses[1:, :3, 3], axis=-1).mean()
    return poses


def test_known_intrinsics_recover_the_true_cameras(rig):
    images, R, t, K = rig
    model = oracle_for(images, R, t, K, tiny_config())
    engine = RayDiffusionEngine(model, EngineConfig(warmup=False))
    result = engine.estimate(ViewSetInput(images, K))
    np.testing.assert_allclose(result.reference_T_camera, true_reference_poses(R, t),
                               atol=POSE_ATOL)
    np.testing.assert_allclose(result.reference_T_camera[0], np.eye(4), atol=1e-9)
    assert not result.intrinsics_estimated
    np.testing.assert_array_equal(result.K, K)


def test_unknown_intrinsics_recover_cameras_and_intrinsics(rig):
    images, R, t, K = rig
    model = oracle_for(images, R, t, K, tiny_config())
    result = RayDiffusionEngine(model, EngineConfig(warmup=False)).estimate(ViewSetInput(images))
    assert result.intrinsics_estimated
    np.testing.assert_allclose(result.K, K, rtol=K_RTOL)
    np.testing.assert_allclose(result.reference_T_camera, true_reference_poses(R, t),
                               atol=POSE_ATOL)


def test_samples_are_batched_deterministic_and_spread(rig):
    images, _, _, K = rig
    engine = RayDiffusionEngine(random_model(tiny_config()),
                                EngineConfig(num_samples=3, warmup=False))
    first = engine.estimate(ViewSetInput(images, K), seed=5)
    again = engine.estimate(ViewSetInput(images, K), seed=5)
    other = engine.estimate(ViewSetInput(images, K), seed=6)
    assert first.samples_reference_T_camera.shape == (3, len(images), 4, 4)
    np.testing.assert_array_equal(first.samples_reference_T_camera,
                                  again.samples_reference_T_camera)
    assert not np.allclose(first.samples_reference_T_camera, other.samples_reference_T_camera)
    assert any(np.array_equal(first.reference_T_camera, s)
               for s in first.samples_reference_T_camera)
    # the uncertainty is the samples' rotation spread (deg) from the medoid
    assert first.uncertainty[0] < REFERENCE_SPREAD_DEG
    assert np.all(first.uncertainty[1:] > REFERENCE_SPREAD_DEG)
    for stage in ('preprocess', 'features', 'sampling', 'rays_to_cameras', 'total'):
        assert first.timings_s[stage] >= 0.0


def test_concurrent_calls_from_threads_match_sequential_calls(rig):
    images, _, _, K = rig
    engine = RayDiffusionEngine(random_model(tiny_config()), EngineConfig(warmup=False))
    expected = [engine.estimate(ViewSetInput(images, K), seed=s).reference_T_camera
                for s in range(4)]
    results = [None] * 4

    def work(seed: int) -> None:
        results[seed] = engine.estimate(ViewSetInput(images, K), seed=seed).reference_T_camera

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for got, want in zip(results, expected, strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize('mutate, message', [
    (lambda ims, K: (ims[:1], K[:1]), 'needs at least 2'),
    (lambda ims, K: (ims, np.where(np.eye(3, dtype=bool), np.nan, K)), 'NaN'),
    (lambda ims, K: (ims, K * np.array([0.0, 1.0, 1.0])[:, None]), 'focal'),
    (lambda ims, K: (ims, K[:2]), 'K must be'),
    (lambda ims, K: ([ims[0][..., 0]] + ims[1:], K), r'\(H, W, 3\)'),
    (lambda ims, K: ([ims[0].astype(np.float32)] + ims[1:], K), 'uint8'),
])
def test_bad_input_raises_a_clear_error(rig, mutate, message):
    images, _, _, K = rig
    engine = RayDiffusionEngine(random_model(tiny_config()), EngineConfig(warmup=False))
    bad_images, bad_K = mutate(list(images), K.copy())
    with pytest.raises(EstimationError, match=message):
        engine.estimate(ViewSetInput(bad_images, bad_K))


def test_non_finite_model_output_is_rejected(rig):
    images, R, t, K = rig
    model = oracle_for(images, R, t, K, tiny_config())
    model.true_rays[0, 0, 0, 0] = float('nan')
    with pytest.raises(EstimationError, match='non-finite'):
        RayDiffusionEngine(model, EngineConfig(warmup=False)).estimate(ViewSetInput(images, K))


def test_coincident_cameras_are_reported_as_degenerate(rig):
    images, R, _, K = rig
    model = oracle_for(images, R, np.zeros((len(R), 3)), K, tiny_config())
    with pytest.raises(EstimationError, match='baseline'):
        RayDiffusionEngine(model, EngineConfig(warmup=False)).estimate(ViewSetInput(images, K))


def test_views_beyond_the_model_limit_are_chunked():
    config = tiny_config()
    num = config.denoiser.max_num_images + 3
    images = rig_images(num, seed=1)
    engine = RayDiffusionEngine(random_model(config), EngineConfig(warmup=False))
    result = engine.estimate(ViewSetInput(images))
    assert result.reference_T_camera.shape == (num, 4, 4)
