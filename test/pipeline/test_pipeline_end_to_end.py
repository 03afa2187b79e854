"""The whole ROS-free chain as the node runs it, with a fake estimator of a known rig.

Raw bgr8 buffers (padded rows) and CameraInfo values -> keyframes -> a rig view set -> the
scheduler's worker thread -> a metric estimate (known baseline) -> a pose graph.
"""

import numpy as np

from raydiff_ros.estimation import EstimationResult
from raydiff_ros.geometry.transforms import invert_transforms, make_transforms
from raydiff_ros.pipeline.camera_info import intrinsics_from_camera_info
from raydiff_ros.pipeline.estimates import summarize_estimate
from raydiff_ros.pipeline.image_decoding import decode_raw_image
from raydiff_ros.pipeline.keyframes import KeyframeBuffer, KeyframeConfig, KeyframeDecision
from raydiff_ros.pipeline.pose_graph import build_pose_graph
from raydiff_ros.pipeline.scale import ScaleConfig, ScaleSource
from raydiff_ros.pipeline.scheduler import InferenceScheduler
from raydiff_ros.pipeline.view_sets import ViewSetBuilder, ViewSetConfig

MS = 1_000_000
BASELINE_M = 0.12
# The rig in its body frame: camera 1 is 12 cm to the right of camera 0, same orientation.
RIG_WORLD_T_CAMERAS = np.stack(
    [make_transforms(np.eye(3), [0.0, 0.0, 0.0]), make_transforms(np.eye(3), [BASELINE_M, 0, 0])]
)


class FakeRigEstimator:
    """Returns the rig's poses in an arbitrary world frame and unit, 3 identical samples."""

    name = 'fake_rig'

    def estimate(self, view_set):
        assert view_set.num_views == 2 and view_set.K.shape == (2, 3, 3)
        cameras_T_world = invert_transforms(RIG_WORLD_T_CAMERAS)
        return EstimationResult.from_world_to_camera(
            np.tile(cameras_T_world[:, :3, :3], (3, 1, 1, 1)),
            np.tile(7.5 * cameras_T_world[:, :3, 3], (3, 1, 1)))


def _bgr8_message(textured, seed, padding=4):
    rgb = textured(seed, height=96, width=128)
    rows = rgb[:, :, ::-1].reshape(96, 128 * 3)
    data = np.concatenate([rows, np.zeros((96, padding), np.uint8)], axis=1).tobytes()
    return dict(encoding='bgr8', height=96, width=128, step=128 * 3 + padding,
                is_bigendian=False, data=data)


def test_raw_images_to_a_metric_pose_graph(textured):
    intrinsics = intrinsics_from_camera_info(
        [200.0, 0, 127.5, 0, 200.0, 95.5, 0, 0, 1], width=256, height=192
    )
    buffer = KeyframeBuffer(2, KeyframeConfig(stored_image_max_side=64))
    builder = ViewSetBuilder(buffer, ViewSetConfig(sync_slop_s=0.01))
    scale = ScaleConfig(scale_source='known_baseline', baseline_m=BASELINE_M)
    published = []

    def estimate(view_set):
        result = FakeRigEstimator().estimate(view_set.estimation_input())
        return summarize_estimate(view_set, result, scale)

    scheduler = InferenceScheduler(estimate, lambda vs, result, latency: published.append(result))
    scheduler.start()
    for camera, stamp_ms in ((0, 1000), (1, 1004)):
        image = decode_raw_image(**_bgr8_message(textured, camera))
        decision = buffer.offer(camera, stamp_ms * MS, image, f'cam{camera}_optical_frame',
                                intrinsics)
        assert decision is KeyframeDecision.KEPT
    view_set = builder.next_rig_set()
    assert view_set is not None and view_set.images[0].shape == (48, 64, 3)
    scheduler.submit(view_set)
    assert scheduler.wait_idle(30.0) and scheduler.stop()

    [estimate_result] = published
    assert estimate_result.scale_source is ScaleSource.KNOWN_BASELINE
    np.testing.assert_allclose(estimate_result.cameras[1].reference_T_camera,
                               RIG_WORLD_T_CAMERAS[1], atol=1e-12)
    # The CameraInfo is for 256 x 192, the images are 128 x 96: intrinsics at 128 x 96.
    fx, fy, cx, cy = estimate_result.cameras[0].intrinsics
    np.testing.assert_allclose([fx, fy, cx, cy], [100.0, 100.0, 63.5, 47.5], atol=1e-12)
    graph = build_pose_graph(
        estimate_result.reference_T_cameras, estimate_result.reference_T_camera_samples,
        view_set.stamps_ns, view_set.camera_indices, view_set.keyframe_ids,
        estimate_result.reference_frame_id, scale_known=estimate_result.metric,
    )
    [edge] = graph.edges
    assert (edge.key_from, edge.key_to) == (1000 * MS, 1004 * MS)
    np.testing.assert_allclose(edge.from_T_to[:3, 3], [BASELINE_M, 0.0, 0.0], atol=1e-12)
