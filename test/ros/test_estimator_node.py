"""The estimator node in its own process over real rclpy/DDS: TF, pose graph, seeds, errors.

The estimator is a test double (``node_scenarios.OracleEstimator``) that returns the true poses
of synthetic frames in an arbitrary gauge and scale, so these tests check the node: buffering,
view sets, worker inference, scale, frames and conventions of every output, diagnostics.
"""

import os
import time

import numpy as np
import pytest

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip('rclpy', reason='rclpy is not installed (run: make test)')

from node_probe import start_node, stop_node  # noqa: E402
from node_scenarios import (  # noqa: E402
    FOCAL_PX,
    IMAGE_HEIGHT,
    IMAGE_WIDTH,
    image_for,
    send_rig,
    true_world_T_camera,
)
from rcl_interfaces.srv import GetParameters  # noqa: E402
from scipy.spatial.transform import Rotation  # noqa: E402

from raydiff_ros.ros.conversions import pose_to_matrix, transform_to_matrix  # noqa: E402

ORACLE = 'python:node_scenarios:make_oracle'
SECOND_NS = 1_000_000_000
BASE_NS = 1_000 * SECOND_NS
ROTATION_TOL_DEG = 0.5
TRANSLATION_TOL_M = 0.02
SEED_POSITION_TOL_M = 0.05
SEED_ROTATION_TOL_DEG = 1.0
# Reliable camera subscriptions: deterministic delivery under CPU load (the default best-effort
# QoS is exercised by the bad-input and missing-camera-info tests, which repeat their input).
FAST = {'keyframe_min_interval_s': 0.0, 'schedule_period_s': 0.05,
        'diagnostics_period_s': 0.2, 'image_qos': 'reliable'}
BEST_EFFORT = {**FAST, 'image_qos': 'sensor_data'}
TRUE_INTRINSICS = [FOCAL_PX, FOCAL_PX, IMAGE_WIDTH / 2, IMAGE_HEIGHT / 2]


def rotation_error_deg(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.degrees(Rotation.from_matrix(a[:3, :3].T @ b[:3, :3]).magnitude()))


def relative(id_from: int, id_to: int) -> np.ndarray:
    """from_T_to of two synthetic cameras (metres)."""
    return np.linalg.inv(true_world_T_camera(id_from)) @ true_world_T_camera(id_to)


def test_rig_calibration_publishes_metric_tf_static_and_pose_graph(run_node):
    ids = [0, 1, 2]
    baseline = float(np.linalg.norm(relative(0, 1)[:3, 3]))
    _, probe = run_node({'num_cameras': 3, 'mode': 'rig', 'estimator': ORACLE,
                         'scale_source': 'known_baseline', 'baseline_m': baseline, **FAST}, 3)
    for attempt in range(5):  # best-effort QoS: repeat until a set got through
        send_rig(probe, ids, BASE_NS + attempt * SECOND_NS)
        if probe.wait_for(lambda: probe.received['tf_static'] and probe.received['graph'], 5):
            break
    transforms = {t.child_frame_id: t for t in probe.received['tf_static'][-1].transforms}
    assert set(transforms) == {'raydiff/cam1_optical_frame', 'raydiff/cam2_optical_frame'}
    for camera in (1, 2):
        message = transforms[f'raydiff/cam{camera}_optical_frame']
        assert message.header.frame_id == 'raydiff/cam0_optical_frame'
        got, want = transform_to_matrix(message.transform), relative(0, camera)
        assert rotation_error_deg(got, want) < ROTATION_TOL_DEG
        np.testing.assert_allclose(got[:3, 3], want[:3, 3], atol=TRANSLATION_TOL_M)

    graph = probe.received['graph'][-1]
    assert [node.robot_id for node in graph.nodes] == [0, 1, 2]
    assert all(node.key == graph.nodes[0].key for node in graph.nodes)  # one stamp: rig
    edge = next(e for e in graph.edges if (e.robot_from, e.robot_to) == (0, 2))
    np.testing.assert_allclose(pose_to_matrix(edge.pose)[:3, 3], relative(0, 2)[:3, 3],
                               atol=TRANSLATION_TOL_M)
    covariance = np.asarray(edge.covariance).reshape(6, 6)
    assert np.all(np.linalg.eigvalsh(covariance) > 0)
    estimate = probe.received['estimate'][-1]
    assert estimate.scale_source == estimate.SCALE_KNOWN_BASELINE and estimate.num_samples == 4
    assert list(estimate.cameras[1].intrinsics) == pytest.approx(TRUE_INTRINSICS)
    # What fixed each pose, from the estimator's pose_sources to the message and diagnostics.
    assert [camera.pose_source for camera in estimate.cameras] == ['reference', 'oracle', 'oracle']
    assert probe.wait_for(lambda: probe.diagnostics_values().get('cameras_oracle') == '2', 5), \
        probe.diagnostics_values()
    assert probe.diagnostics_values()['cameras_reference'] == '1'


@pytest.mark.slow  # 4.7 to 6 s on 2 cores
def test_temporal_mode_publishes_tf_and_graph_between_keyframes(run_node):
    _, probe = run_node({'num_cameras': 1, 'mode': 'temporal', 'estimator': ORACLE,
                         'max_views': 4, **FAST}, 1)
    assert probe.ensure_camera_info(BASE_NS)
    stamps = {}
    for k, pose_id in enumerate(range(10, 18)):
        stamps[BASE_NS + k * SECOND_NS // 2] = pose_id
        probe.send_image(0, image_for(pose_id, k), BASE_NS + k * SECOND_NS // 2)
        probe.send_camera_info(0, BASE_NS + k * SECOND_NS // 2)
        time.sleep(0.1)
    assert probe.wait_for(lambda: probe.received['tf'] and probe.received['graph'], 20)
    graph = probe.received['graph'][-1]
    ids = [stamps[node.key] for node in graph.nodes]       # keys are stamps in nanoseconds
    assert len(ids) == 4 and len(set(ids)) == 4
    unit = np.linalg.norm(relative(ids[0], ids[1])[:3, 3])  # scale none: views 0-1 = 1
    for edge in graph.edges:
        id_from, id_to = stamps[edge.key_from], stamps[edge.key_to]
        got, want = pose_to_matrix(edge.pose), relative(id_from, id_to)
        assert rotation_error_deg(got, want) < ROTATION_TOL_DEG
        np.testing.assert_allclose(got[:3, 3], want[:3, 3] / unit, atol=0.02)
    frames = {t.child_frame_id for t in probe.received['tf'][-1].transforms}
    assert frames == {'raydiff/view_1', 'raydiff/view_2', 'raydiff/view_3'}


def test_relocalization_seed_lands_on_the_true_map_pose(run_node):
    _, probe = run_node({'num_cameras': 1, 'mode': 'temporal', 'estimator': ORACLE,
                         'max_views': 5, 'map_pose_topic': '/map_pose', **FAST}, 1)
    assert probe.ensure_camera_info(BASE_NS)
    for k, pose_id in enumerate(range(20, 26)):              # localized: map poses known
        stamp_ns = BASE_NS + k * SECOND_NS
        probe.send_map_pose(true_world_T_camera(pose_id), stamp_ns)
        time.sleep(0.05)
        probe.send_image(0, image_for(pose_id, k), stamp_ns)
        time.sleep(0.1)
    from std_msgs.msg import Bool
    probe.lost.publish(Bool(data=True))                       # lost: no map pose any more
    query_stamp = BASE_NS + 10 * SECOND_NS
    time.sleep(0.2)
    for _ in range(5):  # best effort: resend the (same) query frame until a seed comes
        probe.send_image(0, image_for(26, 99), query_stamp)
        if probe.wait_for(lambda: probe.received['seed'], 4):
            break
    assert probe.received['seed'], 'no relocalization seed'
    seed = probe.received['seed'][-1]
    assert seed.header.frame_id == 'map'
    assert rclpy.time.Time.from_msg(seed.header.stamp).nanoseconds == query_stamp
    got, want = pose_to_matrix(seed.pose.pose), true_world_T_camera(26)
    assert np.linalg.norm(got[:3, 3] - want[:3, 3]) < SEED_POSITION_TOL_M
    assert rotation_error_deg(got, want) < SEED_ROTATION_TOL_DEG
    covariance = np.asarray(seed.pose.covariance).reshape(6, 6)
    assert np.all(np.diag(covariance) > 0)


def test_executor_serves_parameters_while_inference_runs(run_node, tmp_path):
    gate = str(tmp_path / 'gate')
    os.environ['RAYDIFF_TEST_GATE'] = gate
    try:
        _, probe = run_node({'num_cameras': 2, 'mode': 'rig',
                             'estimator': 'python:node_scenarios:make_gated_oracle', **FAST}, 2)
    finally:
        del os.environ['RAYDIFF_TEST_GATE']
    send_rig(probe, [3, 4], BASE_NS)
    assert probe.wait_for(lambda: os.path.exists(gate + '.started'), 20), 'no inference'
    client = probe.node.create_client(GetParameters, '/raydiff_estimator/get_parameters')
    assert client.wait_for_service(timeout_sec=10)
    future = client.call_async(GetParameters.Request(names=['mode', 'num_samples']))
    assert probe.wait_for(future.done, 10), 'parameter request not served during inference'
    assert [v.string_value for v in future.result().values][:1] == ['rig']
    assert not probe.received['tf_static']                    # inference is still blocked
    open(gate, 'w').close()
    assert probe.wait_for(lambda: probe.received['tf_static'], 20)


@pytest.mark.slow  # 5 to 7 s on 2 cores
def test_bad_inputs_are_diagnosed_and_never_published(run_node):
    process, probe = run_node({'num_cameras': 2, 'mode': 'rig', 'estimator': ORACLE,
                               **BEST_EFFORT}, 2)
    good = image_for(5, 0)

    def diagnosed() -> bool:
        values = probe.diagnostics_values()
        return (int(values.get('input_errors_image_1', 0)) >= 3
                and int(values.get('input_errors_camera_info_1', 0)) >= 1)

    for attempt in range(20):  # best-effort topics: repeat, as real cameras do
        stamp_ns = BASE_NS + attempt * SECOND_NS
        probe.send_camera_info(0, stamp_ns)
        probe.send_camera_info(1, stamp_ns, K=np.zeros((3, 3)))      # zero camera info
        probe.send_image(0, good, stamp_ns)
        probe.send_image(1, good, stamp_ns, encoding='yuv9')          # unknown encoding
        probe.send_image(1, good, stamp_ns + 1, step=10)              # wrong step
        probe.send_image(1, good, stamp_ns + 2, data=good.tobytes()[:1000])  # truncated
        if probe.wait_for(diagnosed, 2):
            break
    values = probe.diagnostics_values()
    assert diagnosed(), {k: v for k, v in values.items() if 'error' in k or k.startswith('_')}
    time.sleep(0.5)
    assert process.poll() is None, 'the node died:\n' + process.log_path.read_text()
    assert not probe.received['tf_static'], probe.received['tf_static']
    assert not probe.received['graph'], probe.received['graph']


def test_non_finite_estimates_are_rejected(run_node):
    process, probe = run_node({'num_cameras': 2, 'mode': 'rig',
                               'estimator': 'python:node_scenarios:make_nan_estimator',
                               **FAST}, 2)
    for attempt in range(3):
        send_rig(probe, [1, 2], BASE_NS + attempt * SECOND_NS)
    assert probe.wait_for(
        lambda: int(probe.diagnostics_values().get('sets_failed', 0))
        + int(probe.diagnostics_values().get('sets_rejected_nonfinite', 0)) >= 1, 20)
    assert process.poll() is None
    assert not probe.received['tf_static'] and not probe.received['graph']
    assert probe.diagnostics_values()['_level'] >= 1


def assert_configure_fails_and_node_lives(parameters: dict, tmp_path, reason: str) -> None:
    """Start the node with ``parameters``: configure must fail saying ``reason``, and the
    process must stay alive."""
    process = start_node(parameters, tmp_path)
    try:
        deadline = time.monotonic() + 60
        while 'configure failed' not in process.log_path.read_text():
            assert time.monotonic() < deadline, process.log_path.read_text()
            time.sleep(0.1)
        assert reason in process.log_path.read_text()
        time.sleep(0.5)
        assert process.poll() is None
    finally:
        stop_node(process)


def test_a_model_that_cannot_load_leaves_the_node_alive_and_says_why(tmp_path, ros):
    assert_configure_fails_and_node_lives(
        {'estimator': 'python:node_scenarios:make_failing_estimator'}, tmp_path,
        'no model here')


def test_guided_refinement_of_an_estimator_without_sampler_leaves_the_node_alive(tmp_path,
                                                                                 ros):
    assert_configure_fails_and_node_lives(
        {'estimator': 'classical_sift', 'refinement': 'guided'}, tmp_path,
        "'classical_sift' has no sampler")


@pytest.mark.slow  # 6 to 9 s on 2 cores
def test_missing_camera_info_is_diagnosed_and_intrinsics_are_estimated(run_node):
    _, probe = run_node({'num_cameras': 2, 'mode': 'rig', 'estimator': ORACLE,
                         **BEST_EFFORT}, 2)
    for attempt in range(10):  # no camera_info at all
        stamp_ns = BASE_NS + attempt * SECOND_NS
        for camera, pose_id in enumerate([6, 7]):
            probe.send_image(camera, image_for(pose_id, stamp_ns + camera), stamp_ns)
        if probe.wait_for(lambda: probe.received['estimate'], 4):
            break
    assert probe.wait_for(lambda: 'no camera_info' in probe.diagnostics_values().get(
        '_message', ''), 10), probe.diagnostics_values()
    assert probe.diagnostics_values()['_level'] == 1            # WARN
    estimate = probe.received['estimate'][-1]
    assert all(camera.intrinsics_estimated for camera in estimate.cameras)
    # rescaled from the stored keyframe size to the incoming size (half-pixel convention)
    assert list(estimate.cameras[1].intrinsics) == pytest.approx(TRUE_INTRINSICS, abs=0.5)


@pytest.mark.slow  # 3 to 5.5 s on 2 cores
def test_rig_calibration_mode_saves_extrinsics_that_load_back(run_node, tmp_path):
    from std_srvs.srv import Trigger

    from raydiff_ros.calibration.export import read_extrinsics_yaml, read_urdf_joints

    ids = [0, 1, 2]
    baseline = float(np.linalg.norm(relative(0, 1)[:3, 3]))
    output = tmp_path / 'calibration'
    _, probe = run_node({'num_cameras': 3, 'mode': 'rig', 'estimator': ORACLE,
                         'calibration_enabled': True, 'calibration_output_dir': str(output),
                         'scale_source': 'known_baseline', 'baseline_m': baseline, **FAST}, 3)
    for attempt in range(6):                                 # six rig view sets
        send_rig(probe, ids, BASE_NS + attempt * SECOND_NS)
        assert probe.wait_for(lambda n=attempt: len(probe.received['estimate']) > n, 10)
    client = probe.node.create_client(Trigger, '/raydiff_estimator/save_calibration')
    assert client.wait_for_service(timeout_sec=10)
    future = client.call_async(Trigger.Request())
    assert probe.wait_for(future.done, 30)
    assert future.result().success, future.result().message
    urdf = read_urdf_joints(output / 'rig.urdf.xacro')
    yaml_transforms = read_extrinsics_yaml(output / 'extrinsics.yaml')
    for camera in (1, 2):
        child = f'cam{camera}_optical_frame'
        want = relative(0, camera)
        for got in (urdf[child], yaml_transforms[child]):
            assert rotation_error_deg(got, want) < ROTATION_TOL_DEG
            np.testing.assert_allclose(got[:3, 3], want[:3, 3], atol=TRANSLATION_TOL_M)
    assert (output / 'static_transforms.launch.py').is_file()
    transforms = {t.child_frame_id for t in probe.received['tf_static'][-1].transforms}
    assert transforms == {'raydiff/cam1_optical_frame', 'raydiff/cam2_optical_frame'}
