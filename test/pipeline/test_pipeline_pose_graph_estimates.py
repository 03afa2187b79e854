"""Pose-graph nodes / edges and the assembly of a publishable view-set estimate."""

import numpy as np
import pytest

from raydiff_ros.estimation import EstimationResult
from raydiff_ros.geometry.transforms import invert_transforms, make_transforms
from raydiff_ros.pipeline.estimates import EstimateError, summarize_estimate
from raydiff_ros.pipeline.pose_graph import (
    EDGE_TYPE_LOOPCLOSE,
    PoseGraphConfig,
    PoseGraphError,
    build_pose_graph,
)
from raydiff_ros.pipeline.scale import ScaleConfig, ScaleSource
from raydiff_ros.pipeline.uncertainty import UncertaintyConfig
from raydiff_ros.pipeline.view_sets import ViewSet, ViewSetMode

FLOORS = UncertaintyConfig().variance_floors


def _three_poses(poses, rng):
    first = np.eye(4)
    return np.stack([first, poses.random_pose(rng), poses.random_pose(rng)])


def test_star_graph_nodes_and_edges(poses, rng):
    frame_T_cameras = _three_poses(poses, rng)
    graph = build_pose_graph(
        frame_T_cameras, None, stamps_ns=(100, 105, 98), camera_indices=(0, 1, 2),
        keyframe_ids=(7, 8, 9), frame_id='raydiff/cam0_optical_frame',
        config=PoseGraphConfig(robot_id_offset=10),
    )
    assert graph.frame_id == 'raydiff/cam0_optical_frame' and graph.stamp_ns == 105
    assert [(n.key, n.robot_id) for n in graph.nodes] == [(100, 10), (105, 11), (98, 12)]
    assert [(e.key_from, e.key_to, e.robot_from, e.robot_to) for e in graph.edges] == [
        (100, 105, 10, 11), (100, 98, 10, 12)
    ]
    for edge, j in zip(graph.edges, (1, 2), strict=True):
        assert edge.edge_type == EDGE_TYPE_LOOPCLOSE
        # from_T_to: the 'to' camera in the 'from' frame (Kimera-PGMO BetweenFactor).
        np.testing.assert_allclose(frame_T_cameras[0] @ edge.from_T_to, frame_T_cameras[j],
                                   atol=1e-12)
        np.testing.assert_allclose(edge.covariance, np.diag(FLOORS), atol=1e-15)


def test_all_pairs_and_index_keys(poses, rng):
    graph = build_pose_graph(
        _three_poses(poses, rng), None, (100, 100, 100), (0, 1, 2), (7, 8, 9), 'map',
        PoseGraphConfig(pose_graph_key_mode='index', pose_graph_edges='all_pairs'),
    )
    assert [n.key for n in graph.nodes] == [7, 8, 9]
    assert [(e.key_from, e.key_to) for e in graph.edges] == [(7, 8), (7, 9), (8, 9)]


def scale_inflated(t: np.ndarray) -> np.ndarray:
    """(3, 3) translation covariance of one sample at t (3,) with unknown scale (std 0.5) and
    equal floors f, |t| large: 0.25 t t^T along t and f in the two directions across it."""
    direction = t / np.linalg.norm(t)
    return 0.25 * np.outer(t, t) + FLOORS[0] * (np.eye(3) - np.outer(direction, direction))


def test_edge_covariances_come_from_the_samples_and_unknown_scale_inflates(poses, rng):
    frame_T_cameras = _three_poses(poses, rng)[:2]
    samples = np.stack([frame_T_cameras, frame_T_cameras])
    samples[0, 1, 0, 3] += 0.1
    samples[1, 1, 0, 3] -= 0.1
    graph = build_pose_graph(frame_T_cameras, samples, (1, 2), (0, 1), (0, 1), 'cam0')
    # 'from' is the identity, so the from frame is the graph frame: var x = 0.02.
    assert graph.edges[0].covariance[0, 0] == pytest.approx(0.02)
    unknown = build_pose_graph(frame_T_cameras, None, (1, 2), (0, 1), (0, 1), 'cam0',
                               scale_known=False)
    # 0.25 t t^T along t (above the floor), the floor in the two directions across it.
    np.testing.assert_allclose(unknown.edges[0].covariance[:3, :3],
                               scale_inflated(frame_T_cameras[1, :3, 3]), atol=1e-12)


def test_duplicate_node_identities_and_bad_shapes_are_refused(poses, rng):
    frame_T_cameras = _three_poses(poses, rng)
    with pytest.raises(PoseGraphError, match='duplicate'):
        build_pose_graph(frame_T_cameras, None, (5, 5, 6), (0, 0, 1), (1, 2, 3), 'cam0')
    with pytest.raises(PoseGraphError, match='N stamps'):
        build_pose_graph(frame_T_cameras, None, (5, 6), (0, 1), (1, 2), 'cam0')
    with pytest.raises(PoseGraphError, match='pose_samples'):
        build_pose_graph(frame_T_cameras, frame_T_cameras[None, :2], (5, 6, 7), (0, 1, 2),
                         (1, 2, 3), 'cam0')
    with pytest.raises(PoseGraphError, match='pose_graph_key_mode'):
        PoseGraphConfig(pose_graph_key_mode='uuid')


# ---------------------------------------------------------------------------------------------
# summarize_estimate


def _samples_of(world_T_cameras, scale, K=None, pose_sources=()):
    """One sample of the cameras in another world frame at ``scale`` units per metre (K, when
    given, estimated by the estimator; pose_sources, when given, what fixed each pose)."""
    cameras_T_world = invert_transforms(world_T_cameras)
    return EstimationResult.from_world_to_camera(
        cameras_T_world[:, :3, :3], scale * cameras_T_world[:, :3, 3], K=K,
        intrinsics_estimated=K is not None, pose_sources=pose_sources)


def _view_set(mode, num, K=None, map_T_cameras=()):
    images = tuple(np.zeros((48, 64, 3), np.uint8) for _ in range(num))
    return ViewSet(
        mode=mode, images=images, K=tuple(K if K is not None else [None] * num),
        stamps_ns=tuple(range(10, 10 + num)), camera_indices=tuple(range(num)),
        frame_ids=tuple(f'cam{i}' for i in range(num)), keyframe_ids=tuple(range(num)),
        map_T_cameras=map_T_cameras, source_sizes=((640, 480),) * num,
    )


def test_rig_estimate_with_a_known_baseline_is_metric(poses, rng):
    world_T_cameras = np.stack([poses.random_pose(rng) for _ in range(3)])
    K_stored = np.array([[50.0, 0.0, 31.5], [0.0, 50.0, 23.5], [0.0, 0.0, 1.0]])
    view_set = _view_set(ViewSetMode.RIG, 3, K=[K_stored] * 3)
    baseline = float(np.linalg.norm(world_T_cameras[0, :3, 3] - world_T_cameras[2, :3, 3]))
    scale = ScaleConfig(scale_source='known_baseline', baseline_camera_a=0, baseline_camera_b=2,
                        baseline_m=baseline)
    sources = ('reference', 'verified_matches', 'prior')
    estimate = summarize_estimate(view_set, _samples_of(world_T_cameras, 0.3,
                                                        pose_sources=sources), scale)
    assert estimate.scale_source is ScaleSource.KNOWN_BASELINE and estimate.metric
    assert tuple(c.pose_source for c in estimate.cameras) == sources
    expected = invert_transforms(world_T_cameras[0]) @ world_T_cameras
    np.testing.assert_allclose(estimate.reference_T_cameras, expected, atol=1e-9)
    camera = estimate.cameras[1]
    assert (camera.camera_index, camera.stamp_ns, camera.frame_id) == (1, 11, 'cam1')
    # K of the 64 x 48 stored image, rescaled by 10 to 640 x 480: cx = 10 (31.5 + 0.5) - 0.5.
    assert camera.intrinsics == pytest.approx((500.0, 500.0, 319.5, 239.5))
    assert not camera.intrinsics_estimated
    np.testing.assert_allclose(camera.covariance, np.diag(FLOORS), atol=1e-15)
    assert estimate.reference_frame_id == 'cam0' and estimate.num_samples == 1


def test_temporal_estimate_without_scale_uses_model_intrinsics(poses, rng):
    world_T_cameras = np.stack([poses.random_pose(rng) for _ in range(2)])
    K_model = np.tile(np.array([[40.0, 0.0, 32.0], [0.0, 40.0, 24.0], [0.0, 0.0, 1.0]]), (2, 1, 1))
    estimate = summarize_estimate(
        _view_set(ViewSetMode.TEMPORAL, 2), _samples_of(world_T_cameras, 2.0, K_model)
    )
    assert estimate.scale_source is ScaleSource.NONE and not estimate.metric
    # An estimator that names no pose sources: the contract's defaults reach every camera.
    assert [c.pose_source for c in estimate.cameras] == ['reference', 'unspecified']
    assert np.linalg.norm(estimate.cameras[1].reference_T_camera[:3, 3]) == pytest.approx(1.0)
    assert estimate.cameras[1].intrinsics_estimated
    assert estimate.cameras[1].intrinsics[0] == pytest.approx(400.0)
    # Unit baseline, unknown scale: 0.5^2 t t^T along the translation t (|t| = 1), the floor
    # across it.
    t = estimate.cameras[1].reference_T_camera[:3, 3]
    np.testing.assert_allclose(estimate.cameras[1].covariance[:3, :3], scale_inflated(t),
                               atol=1e-12)


def test_relocalization_estimate_is_aligned_to_the_map(poses):
    target = np.zeros(3)
    map_T_cameras = [poses.look_at(np.array(c, dtype=float), target)
                     for c in ([2, 0, 1], [0, 2, 1.2], [-2, 0, 0.8], [0, -2, 1.1])]
    view_set = _view_set(ViewSetMode.RELOCALIZATION, 4,
                         map_T_cameras=(None,) + tuple(map_T_cameras[1:]))
    sources = ('reference', 'prior', 'verified_matches', 'fallback')
    estimate = summarize_estimate(view_set, _samples_of(np.stack(map_T_cameras), 0.25,
                                                        pose_sources=sources))
    assert estimate.scale_source is ScaleSource.MAP_ALIGNMENT and estimate.metric
    assert tuple(c.pose_source for c in estimate.cameras) == sources
    np.testing.assert_allclose(estimate.relocalization.map_T_query, map_T_cameras[0], atol=1e-9)
    expected = invert_transforms(map_T_cameras[0]) @ np.stack(map_T_cameras)
    np.testing.assert_allclose(estimate.reference_T_cameras, expected, atol=1e-9)


def test_samples_of_another_size_are_refused(poses, rng):
    samples = EstimationResult(np.tile(np.eye(4), (3, 1, 1)))
    with pytest.raises(EstimateError, match='3 estimated views'):
        summarize_estimate(_view_set(ViewSetMode.RIG, 2), samples)


def test_estimate_poses_feed_the_pose_graph(poses, rng):
    world_T_cameras = np.stack([poses.random_pose(rng) for _ in range(3)])
    view_set = _view_set(ViewSetMode.RIG, 3)
    estimate = summarize_estimate(view_set, _samples_of(world_T_cameras, 1.0))
    graph = build_pose_graph(
        estimate.reference_T_cameras, estimate.reference_T_camera_samples, view_set.stamps_ns,
        view_set.camera_indices, view_set.keyframe_ids, estimate.reference_frame_id,
        scale_known=estimate.metric,
    )
    np.testing.assert_allclose(graph.nodes[0].frame_T_camera, make_transforms(np.eye(3),
                                                                              np.zeros(3)),
                               atol=1e-12)
    np.testing.assert_allclose(graph.edges[1].from_T_to, estimate.cameras[2].reference_T_camera,
                               atol=1e-12)


def test_the_estimator_gets_the_stored_images_and_intrinsics_known_for_every_view():
    K = np.array([[50.0, 0.0, 31.5], [0.0, 50.0, 23.5], [0.0, 0.0, 1.0]])
    view_set = _view_set(ViewSetMode.RIG, 3, K=[K] * 3)
    inputs = view_set.estimation_input()
    assert inputs.num_views == 3 and inputs.images[2] is view_set.images[2]
    np.testing.assert_array_equal(inputs.K, np.stack([K] * 3))
    assert inputs.ground_truth is None and inputs.metadata['frame_ids'] == view_set.frame_ids
    partly_known = _view_set(ViewSetMode.RIG, 2, K=[K, None])
    assert partly_known.estimation_input().K is None  # estimated for all views then
