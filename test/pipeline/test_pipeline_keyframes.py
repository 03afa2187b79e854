"""Keyframe selection: blur rejection, time / view-change triggers, ordering, bounded memory."""

import threading

import cv2
import numpy as np
import pytest

from raydiff_ros.geometry.transforms import PoseError
from raydiff_ros.pipeline.camera_info import CameraInfoError, PinholeIntrinsics
from raydiff_ros.pipeline.image_decoding import decode_raw_image, raw_image_view
from raydiff_ros.pipeline.keyframes import (
    KeyframeBuffer,
    KeyframeConfig,
    KeyframeDecision,
    KeyframeError,
    laplacian_variance,
    measure_frame,
    thumbnail_distance,
)

MS = 1_000_000
S = 1_000_000_000


def test_laplacian_variance_of_a_single_bright_pixel_matches_hand_computation():
    grey = np.zeros((5, 5), dtype=np.uint8)
    grey[2, 2] = 255
    # Laplacian: -4 * 255 at the centre, 255 at its 4 neighbours, 0 elsewhere; mean 0, so the
    # variance is (1020^2 + 4 * 255^2) / 25 = 52020.
    assert laplacian_variance(grey) == pytest.approx(52020.0)
    assert laplacian_variance(np.full((5, 5), 77, np.uint8)) == 0.0


def test_blurred_frame_is_rejected_and_sharp_frame_kept(textured):
    sharp = textured(0)
    blurred = cv2.GaussianBlur(sharp, (0, 0), 5)
    config = KeyframeConfig()
    assert measure_frame(sharp, config)[0] > config.blur_min_laplacian_variance
    assert measure_frame(blurred, config)[0] < config.blur_min_laplacian_variance

    buffer = KeyframeBuffer(1, config)
    assert buffer.offer(0, 1 * S, blurred) is KeyframeDecision.REJECTED_BLUR
    assert buffer.offer(0, 2 * S, sharp) is KeyframeDecision.KEPT
    counters = buffer.counters(0)
    assert (counters.received, counters.kept, counters.rejected_blur) == (2, 1, 1)


def test_blur_threshold_zero_disables_rejection(textured):
    buffer = KeyframeBuffer(1, KeyframeConfig(blur_min_laplacian_variance=0.0))
    flat = np.full((60, 80, 3), 128, np.uint8)
    assert buffer.offer(0, 0, flat) is KeyframeDecision.KEPT


def test_discard_drops_the_keyframes_of_given_ids_only():
    buffer = KeyframeBuffer(2, KeyframeConfig(blur_min_laplacian_variance=0.0,
                                              keyframe_min_interval_s=0.0))
    rng = np.random.default_rng(0)
    for k in range(3):
        for camera in (0, 1):
            image = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
            assert buffer.offer(camera, k * S, image) is KeyframeDecision.KEPT
    ids = [frame.keyframe_id for frame in buffer.all_keyframes()]
    assert buffer.discard([ids[0], ids[3], 999]) == 2
    assert [frame.keyframe_id for frame in buffer.all_keyframes()] == [
        i for i in ids if i not in (ids[0], ids[3])]
    assert buffer.counters(0).stored + buffer.counters(1).stored == 4


def test_time_or_view_change_triggers_a_keyframe(textured):
    config = KeyframeConfig(keyframe_min_interval_s=1.0, keyframe_min_change=0.05)
    buffer = KeyframeBuffer(1, config)
    view_a, view_b = textured(1), textured(2)
    assert buffer.offer(0, 0, view_a) is KeyframeDecision.KEPT  # first frame
    assert buffer.offer(0, 100 * MS, view_a) is KeyframeDecision.REJECTED_SIMILAR
    assert buffer.offer(0, 200 * MS, view_b) is KeyframeDecision.KEPT  # the view changed
    assert buffer.offer(0, 900 * MS, view_b) is KeyframeDecision.REJECTED_SIMILAR
    assert buffer.offer(0, 1200 * MS, view_b) is KeyframeDecision.KEPT  # 1.0 s since last
    assert [k.stamp_ns for k in buffer.keyframes(0)] == [0, 200 * MS, 1200 * MS]
    assert buffer.counters(0).rejected_similar == 2


def test_view_change_ignores_a_global_brightness_change(textured):
    config = KeyframeConfig()
    view = textured(3)
    brighter = np.clip(view.astype(int) + 30, 0, 255).astype(np.uint8)
    other = textured(4)
    thumb = measure_frame(view, config)[1]
    assert thumbnail_distance(thumb, measure_frame(brighter, config)[1]) < 0.02
    assert thumbnail_distance(thumb, measure_frame(other, config)[1]) > config.keyframe_min_change


def test_out_of_order_frames_are_rejected_and_a_clock_jump_resets(textured):
    buffer = KeyframeBuffer(1, KeyframeConfig(keyframe_min_interval_s=0.0))
    image = textured(5)
    assert buffer.offer(0, 10 * S, image) is KeyframeDecision.KEPT
    assert buffer.offer(0, 10 * S, image) is KeyframeDecision.REJECTED_OUT_OF_ORDER
    assert buffer.offer(0, 10 * S - 500 * MS, image) is KeyframeDecision.REJECTED_OUT_OF_ORDER
    # A bag restarting: 8 s back (> clock_jump_reset_s = 1 s) clears the camera and keeps it.
    assert buffer.offer(0, 2 * S, image) is KeyframeDecision.KEPT
    assert [k.stamp_ns for k in buffer.keyframes(0)] == [2 * S]
    counters = buffer.counters(0)
    assert (counters.rejected_out_of_order, counters.resets, counters.stored) == (2, 1, 1)


def test_memory_stays_bounded_under_a_flood_of_frames(textured):
    config = KeyframeConfig(
        keyframe_min_interval_s=0.0, max_keyframes_per_camera=5, stored_image_max_side=64
    )
    buffer = KeyframeBuffer(2, config)
    images = [textured(seed, height=480, width=640, block=32) for seed in range(2)]
    num_frames = 300
    for n in range(num_frames):
        for camera in range(2):
            assert buffer.offer(camera, n * MS, images[n % 2]) is KeyframeDecision.KEPT
    for camera in range(2):
        stored = buffer.keyframes(camera)
        assert len(stored) == 5
        assert [k.stamp_ns for k in stored] == [n * MS for n in range(num_frames - 5, num_frames)]
        for keyframe in stored:
            assert keyframe.image.shape == (48, 64, 3)  # 640 x 480 -> longer side 64
            assert keyframe.source_size == (640, 480)
            assert not any(np.shares_memory(keyframe.image, image) for image in images)
        counters = buffer.counters(camera)
        assert (counters.received, counters.kept, counters.evicted, counters.stored) == (
            num_frames, num_frames, num_frames - 5, 5
        )
    ids = [k.keyframe_id for k in buffer.all_keyframes()]
    assert len(set(ids)) == 10 and max(ids) == 2 * num_frames - 1


def test_small_images_are_stored_as_copies_without_upscaling(textured):
    buffer = KeyframeBuffer(1, KeyframeConfig(stored_image_max_side=256))
    image = textured(6)
    buffer.offer(0, 0, image)
    stored = buffer.latest(0).image
    np.testing.assert_array_equal(stored, image)
    assert not np.shares_memory(stored, image)


def test_intrinsics_are_rescaled_to_the_stored_image(textured):
    buffer = KeyframeBuffer(1, KeyframeConfig(stored_image_max_side=256))
    # CameraInfo for 1280 x 960, image delivered at 640 x 480, stored at 256 x 192.
    info = PinholeIntrinsics(fx=1000, fy=1000, cx=640, cy=480, width=1280, height=960)
    buffer.offer(0, 0, textured(7, height=480, width=640), 'cam0', intrinsics=info)
    keyframe = buffer.latest(0)
    assert keyframe.image.shape == (192, 256, 3)
    scale = 256 / 1280
    expected = np.array(
        [[1000 * scale, 0, (640 + 0.5) * scale - 0.5],
         [0, 1000 * scale, (480 + 0.5) * scale - 0.5],
         [0, 0, 1]]
    )
    np.testing.assert_allclose(keyframe.K, expected, atol=1e-12)
    with pytest.raises(CameraInfoError, match='aspect'):
        buffer.offer(0, S, textured(8, height=360, width=640), intrinsics=info)


def test_late_intrinsics_attach_only_to_keyframes_stored_without_them(textured):
    buffer = KeyframeBuffer(1, KeyframeConfig(stored_image_max_side=256,
                                              keyframe_min_interval_s=0.0))
    info = PinholeIntrinsics(fx=1000, fy=1000, cx=640, cy=480, width=1280, height=960)
    other = PinholeIntrinsics(fx=500, fy=500, cx=320, cy=240, width=640, height=480)
    buffer.offer(0, 1 * S, textured(7, height=480, width=640))  # before any CameraInfo
    buffer.offer(0, 2 * S, textured(8, height=360, width=640))  # 16:9, fits neither
    buffer.offer(0, 3 * S, textured(9, height=480, width=640), intrinsics=other)
    assert buffer.attach_intrinsics(0, info) == 1
    first, cropped, known = buffer.keyframes(0)
    reference = KeyframeBuffer(1, KeyframeConfig(stored_image_max_side=256))
    reference.offer(0, 0, textured(7, height=480, width=640), intrinsics=info)
    np.testing.assert_allclose(first.K, reference.latest(0).K, rtol=1e-12)
    assert cropped.K is None
    np.testing.assert_allclose(known.K[0, 0], 500 * 256 / 640, rtol=1e-12)  # its own, kept
    assert buffer.attach_intrinsics(0, info) == 0


def test_map_poses_attach_to_stored_keyframes(textured, poses, rng):
    buffer = KeyframeBuffer(1, KeyframeConfig(keyframe_min_interval_s=0.0))
    pose = poses.random_pose(rng)
    buffer.offer(0, 1 * S, textured(9), map_T_camera=pose)
    buffer.offer(0, 2 * S, textured(10))
    np.testing.assert_array_equal(buffer.keyframes(0)[0].map_T_camera, pose)
    assert buffer.keyframes(0)[1].map_T_camera is None
    assert buffer.set_map_pose(0, 2 * S, pose)
    np.testing.assert_array_equal(buffer.keyframes(0)[1].map_T_camera, pose)
    assert not buffer.set_map_pose(0, 3 * S, pose)
    bad = pose.copy()
    bad[0, 0] = 2.0
    with pytest.raises(PoseError, match='rotation'):
        buffer.set_map_pose(0, 2 * S, bad)


def test_concurrent_offers_keep_counters_consistent(textured):
    buffer = KeyframeBuffer(4, KeyframeConfig(keyframe_min_interval_s=0.5))
    image = textured(11, height=48, width=64)

    def feed(camera):
        for n in range(50):
            buffer.offer(camera, n * 100 * MS, image)

    threads = [threading.Thread(target=feed, args=(c,)) for c in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for camera in range(4):
        counters = buffer.counters(camera)
        assert counters.received == 50
        # Same view every 0.1 s with a 0.5 s interval: frames 0, 5, 10, ... are kept.
        assert counters.kept == 10 and counters.rejected_similar == 40


@pytest.mark.parametrize(
    'kwargs, words',
    [
        ({'keyframe_min_interval_s': -1.0}, 'keyframe_min_interval_s'),
        ({'keyframe_min_change': 1.5}, 'keyframe_min_change'),
        ({'blur_min_laplacian_variance': -1.0}, 'blur_min_laplacian_variance'),
        ({'thumbnail_size': 2}, 'thumbnail_size'),
        ({'max_keyframes_per_camera': 0}, 'max_keyframes_per_camera'),
        ({'stored_image_max_side': 8}, 'stored_image_max_side'),
        ({'clock_jump_reset_s': 0.0}, 'clock_jump_reset_s'),
    ],
)
def test_invalid_config_is_refused(kwargs, words):
    with pytest.raises(KeyframeError, match=words):
        KeyframeConfig(**kwargs)


def test_bad_camera_index_and_image_are_refused(textured):
    buffer = KeyframeBuffer(2)
    with pytest.raises(KeyframeError, match='camera_index 2'):
        buffer.offer(2, 0, textured(0))
    with pytest.raises(KeyframeError, match='uint8 RGB'):
        buffer.offer(0, 0, np.zeros((10, 10), np.uint8))
    with pytest.raises(KeyframeError, match='num_cameras'):
        KeyframeBuffer(0)


@pytest.mark.parametrize('size', [(480, 640), (301, 457), (200, 300)])
@pytest.mark.parametrize('encoding', ['rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8'])
def test_a_pixel_view_is_kept_and_measured_exactly_as_its_decoded_rgb_image(size, encoding):
    height, width = size
    channels = {'mono8': 1}.get(encoding, len(encoding) - 1)
    step = width * channels + 3  # padded rows
    noise = np.random.default_rng(height).integers(0, 256, (height, step), dtype=np.uint8)
    data = cv2.GaussianBlur(noise, (5, 5), 0).tobytes()
    config = KeyframeConfig(keyframe_min_interval_s=0.0, stored_image_max_side=400)
    by_rgb, by_view = KeyframeBuffer(1, config), KeyframeBuffer(1, config)
    intrinsics = PinholeIntrinsics(
        fx=0.8 * width, fy=0.8 * width, cx=width / 2, cy=height / 2, width=width, height=height
    )
    fields = (encoding, height, width, step, False, data)
    by_rgb.offer(0, S, decode_raw_image(*fields), 'c', intrinsics)
    by_view.offer(0, S, raw_image_view(*fields), 'c', intrinsics)
    expected, kept = by_rgb.latest(0), by_view.latest(0)
    assert kept.sharpness == expected.sharpness
    np.testing.assert_array_equal(kept.thumbnail, expected.thumbnail)
    np.testing.assert_array_equal(kept.image, expected.image)
    np.testing.assert_array_equal(kept.K, expected.K)
    assert kept.image.flags.c_contiguous and kept.source_size == (width, height)
    assert not np.shares_memory(kept.image, np.frombuffer(data, np.uint8))
