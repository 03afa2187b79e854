"""View-set formation: rig sync within slop, temporal diversity, relocalization coverage."""

import numpy as np
import pytest

from raydiff_ros.geometry.transforms import make_transforms
from raydiff_ros.pipeline.keyframes import KeyframeBuffer, KeyframeConfig
from raydiff_ros.pipeline.view_sets import (
    ViewSet,
    ViewSetBuilder,
    ViewSetConfig,
    ViewSetError,
    ViewSetMode,
    select_diverse_keyframes,
    select_relocalization_keyframes,
    select_rig_keyframes,
)

MS = 1_000_000
S = 1_000_000_000


def _rig_frames(keyframe, stamps_ms_by_camera):
    frames, next_id = {}, 0
    for camera, stamps in stamps_ms_by_camera.items():
        frames[camera] = []
        for stamp in stamps:
            frames[camera].append(keyframe(next_id, stamp * MS, camera))
            next_id += 1
    return frames


STAMPS_MS = {0: [0, 100, 200], 1: [5, 104, 260], 2: [2, 98, 250]}


def test_rig_takes_the_newest_set_within_the_slop(keyframe):
    chosen = select_rig_keyframes(_rig_frames(keyframe, STAMPS_MS), 10 * MS)
    # 260 / 250 / 200 have no partners within 10 ms; 104 (cam1) with 100 and 98 does.
    assert [k.stamp_ns // MS for k in chosen] == [100, 104, 98]
    assert [k.camera_index for k in chosen] == [0, 1, 2]


def test_rig_with_a_tighter_slop_falls_back_to_an_older_set(keyframe):
    chosen = select_rig_keyframes(_rig_frames(keyframe, STAMPS_MS), 5 * MS)
    # Around 100 ms the spread is 6 ms > 5; the set at 0 / 5 / 2 ms spans exactly 5.
    assert [k.stamp_ns // MS for k in chosen] == [0, 5, 2]


def test_rig_outside_the_slop_gives_no_set(keyframe):
    frames = _rig_frames(keyframe, {0: [0, 100, 200], 1: [50, 150, 250]})
    assert select_rig_keyframes(frames, 20 * MS) is None
    assert select_rig_keyframes(frames, 50 * MS) is not None


def _buffer(num_cameras, textured, stamps_ms_by_camera, seed=0):
    buffer = KeyframeBuffer(num_cameras, KeyframeConfig(keyframe_min_interval_s=0.0))
    for camera, stamps in stamps_ms_by_camera.items():
        for n, stamp in enumerate(stamps):
            buffer.offer(camera, stamp * MS, textured(seed + n, 32, 48, 4), f'cam{camera}')
    return buffer


def test_rig_builder_uses_each_keyframe_once_and_moves_forward(textured):
    buffer = _buffer(2, textured, {0: [0, 100], 1: [3, 103]})
    builder = ViewSetBuilder(buffer, ViewSetConfig(sync_slop_s=0.01))
    first = builder.next_rig_set()
    assert first.mode is ViewSetMode.RIG
    assert first.stamps_ns == (100 * MS, 103 * MS)
    assert first.camera_indices == (0, 1) and first.frame_ids == ('cam0', 'cam1')
    # The older set (0 / 3 ms) is never formed after a newer one, and nothing is reused.
    assert builder.next_rig_set() is None
    assert 'no new keyframe' in builder.last_reason
    buffer.offer(0, 200 * MS, textured(50, 32, 48, 4))
    buffer.offer(1, 240 * MS, textured(51, 32, 48, 4))
    assert builder.next_rig_set() is None
    assert 'sync_slop_s' in builder.last_reason
    buffer.offer(1, 205 * MS, textured(52, 32, 48, 4))  # out of order for camera 1: ignored
    buffer.offer(0, 300 * MS, textured(53, 32, 48, 4))
    buffer.offer(1, 301 * MS, textured(54, 32, 48, 4))
    assert builder.next_rig_set().stamps_ns == (300 * MS, 301 * MS)


def test_rig_builder_refuses_a_rig_larger_than_max_views(textured):
    buffer = _buffer(3, textured, {0: [0], 1: [0], 2: [0]})
    builder = ViewSetBuilder(buffer, ViewSetConfig(max_views=2))
    with pytest.raises(ViewSetError, match='max_views'):
        builder.next_rig_set()
    assert builder.next_rig_set([0, 2]).camera_indices == (0, 2)


def _thumbnails():
    """Three distinct views: A flat, B a +-0.2 checkerboard, C +-0.3 stripes."""
    a = np.full((4, 4), 0.5, np.float32)
    checker = (np.indices((4, 4)).sum(axis=0) % 2) * 2.0 - 1.0
    b = (0.5 + 0.2 * checker).astype(np.float32)
    stripes = np.where(np.arange(4)[:, None] < 2, 1.0, -1.0) * np.ones((4, 4))
    c = (0.5 + 0.3 * stripes).astype(np.float32)
    return a, b, c


def test_temporal_diversity_picks_distinct_views(keyframe):
    a, b, c = _thumbnails()
    views = [a, a, a, b, b, c, a, a]  # the newest (id 7) shows A
    frames = [keyframe(i, i * S, thumbnail=t) for i, t in enumerate(views)]
    chosen = select_diverse_keyframes(frames, 3, time_weight_per_s=0.0)
    assert chosen[0].keyframe_id == 7  # the newest is the reference
    shown = {id(k.thumbnail) for k in chosen}
    assert shown == {id(a), id(b), id(c)}
    # Ties between identical views go to the newer keyframe: B at id 4, C at id 5.
    assert [k.keyframe_id for k in chosen] == [7, 5, 4]


def test_temporal_time_weight_spreads_identical_views_in_time(keyframe):
    frames = [keyframe(i, i * S) for i in range(5)]  # identical thumbnails, 1 s apart
    chosen = select_diverse_keyframes(frames, 3, time_weight_per_s=0.01)
    # Newest (4 s), then the farthest in time (0 s), then the one farthest from both (2 s).
    assert [k.stamp_ns // S for k in chosen] == [4, 2, 0]


def test_temporal_builder_window_and_newness(textured):
    stamps = [0, 10_000, 31_000, 32_000, 33_000]  # ms; window 30 s from 33 s excludes 0
    buffer = _buffer(1, textured, {0: stamps})
    builder = ViewSetBuilder(buffer, ViewSetConfig(max_views=8, temporal_window_s=30.0))
    view_set = builder.next_temporal_set()
    assert view_set.mode is ViewSetMode.TEMPORAL
    assert view_set.stamps_ns[0] == 33_000 * MS
    assert sorted(view_set.stamps_ns) == [s * MS for s in stamps[1:]]
    assert builder.next_temporal_set() is None
    assert 'newer' in builder.last_reason
    buffer.offer(0, 34_000 * MS, textured(99, 32, 48, 4))
    assert builder.next_temporal_set().stamps_ns[0] == 34_000 * MS


def _map_pose(x, y=0.0):
    return make_transforms(np.eye(3), np.array([x, y, 0.0]))


def test_relocalization_picks_similar_well_separated_mapped_keyframes(keyframe):
    a, b, c = _thumbnails()
    query = keyframe(10, 10 * S, thumbnail=a)
    stored = [
        keyframe(0, 0, thumbnail=a, map_T_camera=_map_pose(0.0)),
        keyframe(1, 1 * S, thumbnail=a, map_T_camera=_map_pose(0.01)),  # 1 cm from id 0
        keyframe(2, 2 * S, thumbnail=b, map_T_camera=_map_pose(1.0)),
        keyframe(3, 3 * S, thumbnail=a),  # no map pose
        keyframe(4, 4 * S, thumbnail=c, map_T_camera=_map_pose(0.0, 1.0)),
        keyframe(5, 5 * S, thumbnail=a, map_T_camera=_map_pose(2.0)),
    ]
    config = ViewSetConfig(max_views=4, relocalization_min_separation_m=0.05)
    chosen = select_relocalization_keyframes(query, stored, config)
    # Most similar first (A: ids 5 and 1 newer first; 0 is within 5 cm of 1), then B (0.2).
    assert [k.keyframe_id for k in chosen] == [5, 1, 2]
    strict = ViewSetConfig(max_views=4, relocalization_max_appearance_distance=0.1)
    assert [k.keyframe_id for k in select_relocalization_keyframes(query, stored, strict)] == [
        5, 1
    ]


def test_relocalization_builder_sets_map_poses_and_needs_enough_of_them(textured):
    buffer = KeyframeBuffer(1, KeyframeConfig(keyframe_min_interval_s=0.0))
    for n in range(3):
        buffer.offer(0, n * S, textured(n, 32, 48, 4), map_T_camera=_map_pose(float(n)))
    buffer.offer(0, 3 * S, textured(3, 32, 48, 4))  # the lost frame
    builder = ViewSetBuilder(buffer, ViewSetConfig(relocalization_min_known_poses=3))
    view_set = builder.next_relocalization_set()
    assert view_set.mode is ViewSetMode.RELOCALIZATION
    assert view_set.stamps_ns[0] == 3 * S and view_set.map_T_cameras[0] is None
    assert all(pose is not None for pose in view_set.map_T_cameras[1:])
    assert builder.next_relocalization_set() is None  # the same query is not reused

    sparse = KeyframeBuffer(1, KeyframeConfig(keyframe_min_interval_s=0.0))
    sparse.offer(0, 0, textured(0, 32, 48, 4), map_T_camera=_map_pose(0.0))
    sparse.offer(0, S, textured(1, 32, 48, 4))
    builder = ViewSetBuilder(sparse, ViewSetConfig(relocalization_min_known_poses=2))
    assert builder.next_relocalization_set() is None
    assert 'relocalization_min_known_poses' in builder.last_reason


def test_view_set_validation(keyframe):
    frames = [keyframe(i, i) for i in range(3)]
    view_set = ViewSet.from_keyframes(ViewSetMode.TEMPORAL, frames)
    assert view_set.num_views == 3 and view_set.K_array() is None
    assert view_set.map_T_cameras == () and view_set.source_size(0) == (8, 8)
    with pytest.raises(ViewSetError, match='2 to 8 views'):
        ViewSet.from_keyframes(ViewSetMode.TEMPORAL, frames[:1])
    with pytest.raises(ViewSetError, match='2 to 8 views'):
        ViewSet.from_keyframes(ViewSetMode.TEMPORAL, [keyframe(i, i) for i in range(9)])
    with pytest.raises(ViewSetError, match='stamps_ns'):
        ViewSet(ViewSetMode.RIG, view_set.images, view_set.K, (0, 1), (0, 1, 2), ('', '', ''),
                (0, 1, 2))


@pytest.mark.parametrize(
    'kwargs, words',
    [
        ({'sync_slop_s': -0.1}, 'sync_slop_s'),
        ({'max_views': 9}, 'max_views'),
        ({'max_views': 1}, 'max_views'),
        ({'temporal_window_s': 0.0}, 'temporal_window_s'),
        ({'relocalization_min_known_poses': 1}, 'relocalization_min_known_poses'),
        ({'relocalization_max_appearance_distance': 0.0}, 'appearance'),
    ],
)
def test_invalid_view_set_config_is_refused(kwargs, words):
    with pytest.raises(ViewSetError, match=words):
        ViewSetConfig(**kwargs)


def test_relocalization_needing_more_poses_than_max_views_allows_is_refused(textured):
    buffer = _buffer(1, textured, {0: [0, 1000]})
    builder = ViewSetBuilder(buffer, ViewSetConfig(max_views=3, relocalization_min_known_poses=3))
    with pytest.raises(ViewSetError, match='does not fit max_views'):
        builder.next_relocalization_set()


def test_builders_continue_after_a_bag_restart(textured):
    buffer = _buffer(2, textured, {0: [50_000], 1: [50_001]})
    builder = ViewSetBuilder(buffer, ViewSetConfig(sync_slop_s=0.01))
    assert builder.next_rig_set().stamps_ns == (50_000 * MS, 50_001 * MS)
    assert builder.next_temporal_set() is not None
    # The bag loops: stamps start again near 0 (both cameras reset their keyframes).
    for camera in (0, 1):
        buffer.offer(camera, (1000 + camera) * MS, textured(70 + camera, 32, 48, 4))
    assert buffer.counters(0).resets == 1
    assert builder.next_rig_set().stamps_ns == (1000 * MS, 1001 * MS)
    assert builder.next_temporal_set().stamps_ns[0] == 1001 * MS
