"""The newer estimators of the method family in the real estimator node (own process, rclpy/DDS).

``pose_diffusion``, ``camera_ray_token`` and ``fused`` with ``camera_ray_token`` as its prior,
each on a tiny random model saved to a folder, are named by the node's ``estimator`` and
``model_dir`` parameters and run on a rig view set. Random models give random poses: the tests
check what the node makes of them (frames, finite transforms, unit quaternions, pose sources,
diagnostics), never accuracy.
"""

import numpy as np
import pytest

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip('rclpy', reason='rclpy is not installed (run: make test)')

from node_probe import Probe, start_node, stop_node  # noqa: E402
from node_scenarios import send_rig  # noqa: E402
from tiny_camera_token import random_camera_token_model, tiny_camera_token_config  # noqa: E402
from tiny_pose_diffusion import save_tiny_pose_model  # noqa: E402

from raydiff_ros.model.camera_token import save_camera_token_model  # noqa: E402

SECOND_NS = 1_000_000_000
BASE_NS = 1_000 * SECOND_NS
PREFIX = 'raydiff/'
# As test_estimator_node.FAST: no keyframe interval, quick scheduling and diagnostics, and
# reliable camera subscriptions (deterministic delivery under CPU load).
FAST = {'keyframe_min_interval_s': 0.0, 'schedule_period_s': 0.05,
        'diagnostics_period_s': 0.2, 'image_qos': 'reliable'}
CPU = {'device': 'cpu', 'num_samples': 2, **FAST}
ESTIMATE_TIMEOUT_S = 60.0
# translation_variance_floor (x, y, z) and rotation_variance_floor (rx, ry, rz) defaults
VARIANCE_FLOORS = np.array([1e-4] * 3 + [3e-4] * 3)


@pytest.fixture(scope='module')
def model_dirs(tmp_path_factory) -> dict:
    """Tiny random models saved as model folders: ``pose_diffusion`` and ``camera_token``."""
    folders = {'pose_diffusion': save_tiny_pose_model(tmp_path_factory.mktemp('pose_model')),
               'camera_token': tmp_path_factory.mktemp('camera_token_model')}
    save_camera_token_model(random_camera_token_model(tiny_camera_token_config()),
                            folders['camera_token'])
    return folders


def assert_unit_rigid(translation, rotation) -> None:
    """A finite translation and a finite unit quaternion (geometry_msgs fields)."""
    values = [translation.x, translation.y, translation.z,
              rotation.x, rotation.y, rotation.z, rotation.w]
    assert np.all(np.isfinite(values)), values
    assert np.linalg.norm(values[3:]) == pytest.approx(1.0, abs=1e-6), values


def estimate_rig(run_node, estimator: str, model_dir, num_cameras: int, options: str = ''):
    """Start the node in rig mode with ``estimator`` (``estimator_options``: ``options``) on
    ``model_dir``, send one rig view set and check every output; returns (process, probe)
    after the first estimate."""
    process, probe = run_node({'num_cameras': num_cameras, 'mode': 'rig',
                               'estimator': estimator, 'estimator_options': options,
                               'model_dir': str(model_dir), **CPU}, num_cameras)
    send_rig(probe, list(range(3, 3 + num_cameras)), BASE_NS)
    published = probe.wait_for(lambda: probe.received['tf_static'] and probe.received['graph']
                               and probe.received['estimate'], ESTIMATE_TIMEOUT_S)
    assert published, (probe.diagnostics_values(), process.log_path.read_text())
    reference = f'{PREFIX}cam0_optical_frame'
    others = {f'{PREFIX}cam{camera}_optical_frame' for camera in range(1, num_cameras)}

    transforms = probe.received['tf_static'][-1].transforms
    assert {t.child_frame_id for t in transforms} == others
    for message in transforms:
        assert message.header.frame_id == reference
        assert_unit_rigid(message.transform.translation, message.transform.rotation)

    graph = probe.received['graph'][-1]
    assert graph.header.frame_id == reference
    assert [node.robot_id for node in graph.nodes] == list(range(num_cameras))
    assert all(node.key == graph.nodes[0].key for node in graph.nodes)   # one stamp: rig
    assert {(e.robot_from, e.robot_to) for e in graph.edges} == {
        (0, camera) for camera in range(1, num_cameras)}                   # star edges
    for item in [*graph.nodes, *graph.edges]:
        assert_unit_rigid(item.pose.position, item.pose.orientation)
    for edge in graph.edges:
        covariance = np.asarray(edge.covariance).reshape(6, 6)
        assert np.all(np.isfinite(covariance))
        np.testing.assert_allclose(covariance, covariance.T, atol=1e-12)
        # At least the default floors in every direction (so a back-end can invert it), even
        # with one or two samples and unknown scale, where the translation block alone has
        # rank one or two (uncertainty.apply_variance_floors).
        whitened = covariance / np.sqrt(np.outer(VARIANCE_FLOORS, VARIANCE_FLOORS))
        assert np.linalg.eigvalsh(whitened).min() > 1.0 - 1e-6, np.linalg.eigvalsh(whitened)
        assert np.all(np.diag(covariance) >= VARIANCE_FLOORS - 1e-12), np.diag(covariance)

    estimate = probe.received['estimate'][-1]
    assert estimate.model_name == estimator and estimate.mode == estimate.MODE_RIG
    assert [camera.camera_index for camera in estimate.cameras] == list(range(num_cameras))
    assert estimate.cameras[0].pose_source == 'reference'
    assert all(not camera.intrinsics_estimated for camera in estimate.cameras)  # camera_info
    assert process.poll() is None, process.log_path.read_text()
    return process, probe


def diagnostics_after_estimate(probe: Probe) -> dict:
    """The newest diagnostics once they count the published estimate."""
    assert probe.wait_for(
        lambda: int(probe.diagnostics_values().get('view_sets_published', 0)) >= 1, 10), \
        probe.diagnostics_values()
    return probe.diagnostics_values()


def assert_healthy(values: dict, estimator: str) -> None:
    assert values['estimator'] == estimator
    assert values.get('device', 'cpu') == 'cpu'
    for counter in ('failed', 'rejected_nonfinite', 'timed_out'):
        assert values[f'sets_{counter}'] == '0', values
    assert int(values['sets_estimated']) >= 1


def test_pose_diffusion_runs_in_the_node(run_node, model_dirs):
    process, probe = estimate_rig(run_node, 'pose_diffusion', model_dirs['pose_diffusion'], 3)
    estimate = probe.received['estimate'][-1]
    assert estimate.num_samples == 2                     # the node's num_samples parameter
    # SIFT guidance (the default) on random texture: guided or not, the poses are its own.
    sources = [camera.pose_source for camera in estimate.cameras[1:]]
    assert all(source in ('pose_diffusion', 'pose_diffusion+guided') for source in sources)
    values = diagnostics_after_estimate(probe)
    assert_healthy(values, 'pose_diffusion')
    assert values['_level'] == 0, values
    assert sum(int(values.get(f'cameras_{source}', 0)) for source in set(sources)) == 2
    assert process.poll() is None


def test_camera_ray_token_runs_in_the_node(run_node, model_dirs):
    process, probe = estimate_rig(run_node, 'camera_ray_token', model_dirs['camera_token'], 2)
    estimate = probe.received['estimate'][-1]
    assert estimate.num_samples == 1                     # one forward pass, one sample
    assert estimate.cameras[1].pose_source == 'camera_ray_token'
    values = diagnostics_after_estimate(probe)
    assert_healthy(values, 'camera_ray_token')
    assert values['_level'] == 0, values
    assert values['cameras_reference'] == '1' and values['cameras_camera_ray_token'] == '1'
    assert process.poll() is None


def test_fused_with_a_camera_ray_token_prior_runs_in_the_node(run_node, model_dirs):
    # model_dir is the prior's; the default ray_diffusion prior could not load this folder.
    process, probe = estimate_rig(run_node, 'fused', model_dirs['camera_token'], 3,
                                  options='prior=camera_ray_token, max_pairs=3')
    estimate = probe.received['estimate'][-1]
    # The prior's one sample; verified cameras carry no spread of their own.
    assert estimate.num_samples == 1
    sources = [camera.pose_source for camera in estimate.cameras[1:]]
    assert set(sources) <= {'prior', 'verified_matches'}, sources
    values = diagnostics_after_estimate(probe)
    assert_healthy(values, 'fused')
    counted = {source: int(values.get(f'cameras_{source}', 0))
               for source in ('reference', 'prior', 'verified_matches')}
    assert counted == {'reference': 1, 'prior': sources.count('prior'),
                       'verified_matches': sources.count('verified_matches')}, values
    if 'matcher_error' in values:  # no matcher weights: the prior alone, and a warning
        assert set(sources) == {'prior'} and values['_level'] == 1, values
    else:
        assert values['_level'] == 0, values
    assert process.poll() is None


@pytest.mark.parametrize('estimator, model, options, reason', [
    ('pose_diffusion', 'camera_token', '', 'not a pose-diffusion config'),
    ('camera_ray_token', 'camera_token', 'matcher=aliked', 'takes no options'),
    ('fused', 'camera_token', 'prior=camera_ray_token, max_pairs', 'expected KEY=VALUE'),
], ids=['model-of-the-wrong-kind', 'unknown-option', 'malformed-options'])
def test_a_bad_build_leaves_the_node_alive_and_says_why(tmp_path, ros, model_dirs, estimator,
                                                         model, options, reason):
    process = start_node({'num_cameras': 2, 'mode': 'rig', 'estimator': estimator,
                          'estimator_options': options, 'model_dir': str(model_dirs[model]),
                          **CPU}, tmp_path)
    probe = Probe(2)
    try:
        assert probe.wait_for(lambda: reason in probe.diagnostics_values().get('_message', ''),
                              60), (probe.diagnostics_values(), process.log_path.read_text())
        assert probe.diagnostics_values()['_level'] == 2                  # ERROR
        log = process.log_path.read_text()
        assert 'configure failed' in log and reason in log, log
        assert process.poll() is None, log
        assert not probe.received['tf_static'] and not probe.received['graph']
    finally:
        probe.close()
        stop_node(process)
