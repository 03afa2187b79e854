"""Forming view sets (2 to 8 keyframes) for joint pose estimation.

Three modes (``ViewSetMode``; the values equal ``ViewSetEstimate.MODE_*``):

``rig``
    One keyframe per rig camera, all stamps within ``sync_slop_s`` of each other (max - min).
    The newest complete set is taken; a keyframe is used at most once, and a set is only formed
    from keyframes newer than those of the previous rig set (per camera), so sets come out in
    time order. Views are ordered by camera index; the first is the reference.
``temporal``
    ``max_views`` diverse keyframes from one or more cameras among those no older than
    ``temporal_window_s`` before the newest. The newest keyframe is always included (it is the
    reference, view 0); the others are chosen by greedy farthest-point sampling on
    ``diversity_distance`` = thumbnail distance + ``temporal_time_weight`` * |time apart|.
    A new set is formed only when a keyframe newer than the previous set's reference exists.
``relocalization``
    The newest keyframe (the query, view 0, pose unknown) plus up to ``max_views - 1`` stored
    keyframes with known map poses that best cover it: the most similar views (smallest
    thumbnail distance, at most ``relocalization_max_appearance_distance``), skipping any whose
    map position lies within ``relocalization_min_separation_m`` of one already chosen (so the
    map alignment is well conditioned). At least ``relocalization_min_known_poses`` are needed.

The selection functions are pure (``select_rig_keyframes``, ``select_diverse_keyframes``,
``select_relocalization_keyframes``); ``ViewSetBuilder`` adds the "use once / only newer"
state on top of a ``KeyframeBuffer``.
"""

from dataclasses import dataclass
import enum
import threading
from typing import Iterable, Mapping, Optional, Sequence

import numpy as np

from raydiff_ros.estimation.contract import ViewSetInput
from raydiff_ros.parameter_fields import check_fields, parameter
from raydiff_ros.pipeline.keyframes import NS_PER_S, Keyframe, KeyframeBuffer, thumbnail_distance

MIN_VIEWS = 2
MAX_VIEWS = 8
"""View-set size range supported by the model (it was trained on 2 to 8 images)."""


class ViewSetError(ValueError):
    """Invalid view-set configuration or contents."""


class ViewSetMode(enum.IntEnum):
    """How a view set was formed (values of ``ViewSetEstimate.MODE_*``)."""

    RIG = 0
    TEMPORAL = 1
    RELOCALIZATION = 2


@dataclass(frozen=True)
class ViewSetConfig:
    """View-set formation parameters (ROS parameters of the same names).

    Each field's meaning, range and default are in its ``parameter(...)`` declaration.
    ``relocalization_min_known_poses`` must also be at most ``max_views - 1`` (one view is the
    query; the similarity alignment needs 2 known poses, 3 are better), checked when a
    relocalization set is formed. ``temporal_time_weight`` 0 uses appearance only.
    """

    sync_slop_s: float = parameter(
        0.02, 'rig mode: largest stamp spread (max - min) in a set', minimum=0.0
    )
    max_views: int = parameter(
        MAX_VIEWS, 'largest view-set size', minimum=MIN_VIEWS, maximum=MAX_VIEWS
    )
    temporal_window_s: float = parameter(
        30.0,
        'temporal mode: candidates at most this much older than the newest keyframe',
        minimum=0.0,
        exclusive_minimum=True,
    )
    temporal_time_weight: float = parameter(
        0.01,
        'temporal mode: thumbnail-distance units per second apart in the diversity distance',
        minimum=0.0,
    )
    relocalization_min_known_poses: int = parameter(
        3,
        'fewest stored keyframes with map poses per relocalization set',
        minimum=2,
        maximum=MAX_VIEWS - 1,
    )
    relocalization_min_separation_m: float = parameter(
        0.05, 'smallest map distance between two chosen stored keyframes', minimum=0.0
    )
    relocalization_max_appearance_distance: float = parameter(
        1.0,
        'largest thumbnail distance from the query of a chosen stored keyframe (1: any)',
        minimum=0.0,
        maximum=1.0,
        exclusive_minimum=True,
    )

    def __post_init__(self) -> None:
        check_fields(self, ViewSetError)


@dataclass(frozen=True, eq=False)
class ViewSet:
    """N keyframes handed jointly to the estimator; view 0 is the reference.

    Attributes:
        mode: how the set was formed.
        images: N (h_i, w_i, 3) uint8 RGB images.
        K: N (3, 3) intrinsics of the images in pixels, or None where unknown.
        stamps_ns: N image stamps, nanoseconds.
        camera_indices: N camera indices (node camera list).
        frame_ids: N optical frame ids.
        keyframe_ids: N keyframe running indices (``Keyframe.keyframe_id``).
        map_T_cameras: relocalization only: N known (4, 4) map poses, None where unknown (the
            query, view 0); empty in the other modes.
        source_sizes: N (width, height) of the incoming images before downscaling (empty when
            unknown: the images are at full size).
    """

    mode: ViewSetMode
    images: tuple[np.ndarray, ...]
    K: tuple[Optional[np.ndarray], ...]
    stamps_ns: tuple[int, ...]
    camera_indices: tuple[int, ...]
    frame_ids: tuple[str, ...]
    keyframe_ids: tuple[int, ...]
    map_T_cameras: tuple[Optional[np.ndarray], ...] = ()  # noqa: N815 (frame names)
    source_sizes: tuple[tuple[int, int], ...] = ()

    def __post_init__(self) -> None:
        num = len(self.images)
        if not MIN_VIEWS <= num <= MAX_VIEWS:
            raise ViewSetError(f'a view set has {MIN_VIEWS} to {MAX_VIEWS} views, got {num}')
        fields = ('K', 'stamps_ns', 'camera_indices', 'frame_ids', 'keyframe_ids')
        for name in fields:
            if len(getattr(self, name)) != num:
                raise ViewSetError(f'view set {name} has {len(getattr(self, name))} entries, '
                                   f'expected {num}')
        for name in ('map_T_cameras', 'source_sizes'):
            if getattr(self, name) and len(getattr(self, name)) != num:
                raise ViewSetError(f'view set {name} must be empty or have {num} entries')
        for image in self.images:
            if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                raise ViewSetError(f'view set images must be (H, W, 3) uint8, got {image.shape}')

    @classmethod
    def from_keyframes(cls, mode: ViewSetMode, keyframes: Sequence[Keyframe]) -> 'ViewSet':
        """A view set of these keyframes, in this order (map poses kept for relocalization)."""
        map_poses = (
            tuple(k.map_T_camera for k in keyframes) if mode == ViewSetMode.RELOCALIZATION else ()
        )
        return cls(
            mode=ViewSetMode(mode),
            images=tuple(k.image for k in keyframes),
            K=tuple(k.K for k in keyframes),
            stamps_ns=tuple(k.stamp_ns for k in keyframes),
            camera_indices=tuple(k.camera_index for k in keyframes),
            frame_ids=tuple(k.frame_id for k in keyframes),
            keyframe_ids=tuple(k.keyframe_id for k in keyframes),
            map_T_cameras=map_poses,
            source_sizes=tuple(k.source_size for k in keyframes),
        )

    @property
    def num_views(self) -> int:
        return len(self.images)

    @property
    def newest_stamp_ns(self) -> int:
        return max(self.stamps_ns)

    def source_size(self, index: int) -> tuple[int, int]:
        """(width, height) of view ``index`` before downscaling."""
        if self.source_sizes:
            return self.source_sizes[index]
        height, width = self.images[index].shape[:2]
        return width, height

    def K_array(self) -> Optional[np.ndarray]:
        """(N, 3, 3) intrinsics when every view has them, else None."""
        if any(k is None for k in self.K):
            return None
        return np.stack(self.K)

    def estimation_input(self) -> ViewSetInput:
        """What the estimator gets: the stored images, their intrinsics when every view has
        them (else None: estimated), and the frames and stamps as metadata."""
        return ViewSetInput(images=self.images, K=self.K_array(),
                            metadata={'mode': self.mode.name.lower(), 'frame_ids': self.frame_ids,
                                      'stamps_ns': self.stamps_ns})


# ---------------------------------------------------------------------------------------------
# Pure selection


def select_rig_keyframes(
    keyframes_by_camera: Mapping[int, Sequence[Keyframe]], sync_slop_ns: int
) -> Optional[list[Keyframe]]:
    """The newest set of one keyframe per camera whose stamps span at most ``sync_slop_ns``.

    Every keyframe of every camera is tried as the newest member of a set (newest first); each
    other camera contributes its newest keyframe in ``[anchor - slop, anchor]``. The first
    complete set is returned, ordered by camera index.

    Args:
        keyframes_by_camera: the eligible keyframes of each rig camera (any order).
        sync_slop_ns: largest stamp spread of a set, nanoseconds.

    Returns:
        The keyframes, or None when no complete set exists.
    """
    cameras = sorted(keyframes_by_camera)
    if len(cameras) < MIN_VIEWS:
        raise ViewSetError(f'a rig set needs at least {MIN_VIEWS} cameras, got {cameras}')
    anchors = sorted(
        (k for c in cameras for k in keyframes_by_camera[c]),
        key=lambda k: k.stamp_ns,
        reverse=True,
    )
    for anchor in anchors:
        chosen = []
        for camera in cameras:
            in_window = [
                k for k in keyframes_by_camera[camera]
                if anchor.stamp_ns - sync_slop_ns <= k.stamp_ns <= anchor.stamp_ns
            ]
            if not in_window:
                break
            chosen.append(max(in_window, key=lambda k: k.stamp_ns))
        else:
            return chosen
    return None


def diversity_distance(a: Keyframe, b: Keyframe, time_weight_per_s: float) -> float:
    """Thumbnail distance plus ``time_weight_per_s`` times the time between a and b (seconds)."""
    seconds_apart = abs(a.stamp_ns - b.stamp_ns) / NS_PER_S
    return thumbnail_distance(a.thumbnail, b.thumbnail) + time_weight_per_s * seconds_apart


def select_diverse_keyframes(
    candidates: Sequence[Keyframe], num_views: int, time_weight_per_s: float
) -> list[Keyframe]:
    """Greedy farthest-point choice of ``num_views`` keyframes, starting from the newest.

    Each step adds the candidate whose smallest ``diversity_distance`` to the chosen ones is
    largest (ties: the newer). Returns the newest first, then the others newest to oldest.
    """
    pool = sorted(candidates, key=lambda k: (k.stamp_ns, k.keyframe_id), reverse=True)
    if not pool:
        return []
    chosen = [pool.pop(0)]
    nearest = [diversity_distance(k, chosen[0], time_weight_per_s) for k in pool]
    while pool and len(chosen) < num_views:
        best = int(np.argmax(nearest))  # first maximum = newest among ties
        chosen.append(pool.pop(best))
        nearest.pop(best)
        nearest = [
            min(d, diversity_distance(k, chosen[-1], time_weight_per_s))
            for d, k in zip(nearest, pool, strict=True)
        ]
    return [chosen[0]] + sorted(chosen[1:], key=lambda k: k.stamp_ns, reverse=True)


def select_relocalization_keyframes(
    query: Keyframe, stored: Iterable[Keyframe], config: ViewSetConfig
) -> list[Keyframe]:
    """Stored keyframes with map poses that best cover ``query`` (see module docstring).

    Returns:
        Up to ``config.max_views - 1`` keyframes, most similar first (possibly fewer than
        ``relocalization_min_known_poses``; the caller decides).
    """
    candidates = []
    for keyframe in stored:
        if keyframe.map_T_camera is None or keyframe.keyframe_id == query.keyframe_id:
            continue
        distance = thumbnail_distance(query.thumbnail, keyframe.thumbnail)
        if distance <= config.relocalization_max_appearance_distance:
            candidates.append((distance, -keyframe.stamp_ns, keyframe.keyframe_id, keyframe))
    candidates.sort(key=lambda c: c[:3])
    chosen: list[Keyframe] = []
    for *_, keyframe in candidates:
        position = keyframe.map_T_camera[:3, 3]
        if all(
            np.linalg.norm(position - other.map_T_camera[:3, 3])
            >= config.relocalization_min_separation_m
            for other in chosen
        ):
            chosen.append(keyframe)
        if len(chosen) == config.max_views - 1:
            break
    return chosen


# ---------------------------------------------------------------------------------------------
# Stateful builder


class ViewSetBuilder:
    """Forms view sets from a ``KeyframeBuffer``, remembering what was already used.

    ``last_reason`` says why the last call returned None (for diagnostics). When the buffer
    reset a camera (its clock jumped back: a bag loop), what was used is forgotten, so sets
    keep coming after the restart. Thread-safe.
    """

    def __init__(self, buffer: KeyframeBuffer, config: ViewSetConfig = ViewSetConfig()) -> None:
        self._buffer = buffer
        self._config = config
        self._rig_used_ns: dict[int, int] = {}
        self._temporal_reference_ns: Optional[int] = None
        self._relocalization_query_ns: Optional[int] = None
        self._resets_seen = [0] * buffer.num_cameras
        self._lock = threading.Lock()
        self.last_reason = ''

    @property
    def config(self) -> ViewSetConfig:
        return self._config

    def _cameras(self, camera_indices: Optional[Sequence[int]]) -> list[int]:
        if camera_indices is None:
            return list(range(self._buffer.num_cameras))
        cameras = sorted(set(int(c) for c in camera_indices))
        if not cameras:
            raise ViewSetError('camera_indices is empty')
        return cameras

    def _forget_after_resets(self) -> None:
        """Drop the 'already used' marks when a camera's clock jumped back (call locked)."""
        for camera in range(self._buffer.num_cameras):
            resets = self._buffer.counters(camera).resets
            if resets != self._resets_seen[camera]:
                self._resets_seen[camera] = resets
                self._rig_used_ns.pop(camera, None)
                self._temporal_reference_ns = None
                self._relocalization_query_ns = None

    def _none(self, reason: str) -> None:
        self.last_reason = reason
        return None

    def next_rig_set(self, camera_indices: Optional[Sequence[int]] = None) -> Optional[ViewSet]:
        """The newest unused synchronized set over the rig cameras (default: all), or None."""
        cameras = self._cameras(camera_indices)
        if not MIN_VIEWS <= len(cameras) <= self._config.max_views:
            raise ViewSetError(
                f'a rig of {len(cameras)} cameras does not fit max_views {self._config.max_views}'
            )
        with self._lock:
            self._forget_after_resets()
            eligible = {
                c: [k for k in self._buffer.keyframes(c)
                    if k.stamp_ns > self._rig_used_ns.get(c, -1)]
                for c in cameras
            }
            empty = [c for c, frames in eligible.items() if not frames]
            if empty:
                return self._none(f'no new keyframe from cameras {empty}')
            slop_ns = round(self._config.sync_slop_s * NS_PER_S)
            chosen = select_rig_keyframes(eligible, slop_ns)
            if chosen is None:
                return self._none(f'no keyframes of cameras {cameras} within '
                                  f'sync_slop_s = {self._config.sync_slop_s}')
            for keyframe in chosen:
                self._rig_used_ns[keyframe.camera_index] = keyframe.stamp_ns
        self.last_reason = ''
        return ViewSet.from_keyframes(ViewSetMode.RIG, chosen)

    def next_temporal_set(
        self, camera_indices: Optional[Sequence[int]] = None
    ) -> Optional[ViewSet]:
        """A diverse set ending at the newest keyframe of these cameras (default all), or None."""
        cameras = self._cameras(camera_indices)
        frames = [k for c in cameras for k in self._buffer.keyframes(c)]
        if not frames:
            return self._none('no keyframes')
        newest = max(k.stamp_ns for k in frames)
        with self._lock:
            self._forget_after_resets()
            if self._temporal_reference_ns is not None and newest <= self._temporal_reference_ns:
                return self._none('no keyframe newer than the last temporal set')
            window_ns = self._config.temporal_window_s * NS_PER_S
            candidates = [k for k in frames if newest - k.stamp_ns <= window_ns]
            if len(candidates) < MIN_VIEWS:
                return self._none(f'fewer than {MIN_VIEWS} keyframes within temporal_window_s')
            chosen = select_diverse_keyframes(
                candidates, self._config.max_views, self._config.temporal_time_weight
            )
            self._temporal_reference_ns = chosen[0].stamp_ns
        self.last_reason = ''
        return ViewSet.from_keyframes(ViewSetMode.TEMPORAL, chosen)

    def next_relocalization_set(
        self, query_camera_indices: Optional[Sequence[int]] = None
    ) -> Optional[ViewSet]:
        """The newest keyframe of these cameras plus covering stored keyframes, or None."""
        needed = self._config.relocalization_min_known_poses
        if needed > self._config.max_views - 1:
            raise ViewSetError(
                f'relocalization_min_known_poses = {needed} does not fit max_views = '
                f'{self._config.max_views} (one view is the query)'
            )
        cameras = self._cameras(query_camera_indices)
        latest = [k for k in (self._buffer.latest(c) for c in cameras) if k is not None]
        if not latest:
            return self._none('no keyframes')
        query = max(latest, key=lambda k: (k.stamp_ns, k.keyframe_id))
        with self._lock:
            self._forget_after_resets()
            if (self._relocalization_query_ns is not None
                    and query.stamp_ns <= self._relocalization_query_ns):
                return self._none('no keyframe newer than the last relocalization query')
            stored = select_relocalization_keyframes(
                query, self._buffer.all_keyframes(), self._config
            )
            if len(stored) < needed:
                return self._none(
                    f'{len(stored)} stored keyframes with map poses cover the query; '
                    f'relocalization_min_known_poses = {needed}'
                )
            self._relocalization_query_ns = query.stamp_ns
        self.last_reason = ''
        return ViewSet.from_keyframes(ViewSetMode.RELOCALIZATION, [query] + stored)
