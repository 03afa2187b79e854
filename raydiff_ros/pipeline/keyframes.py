"""Per-camera keyframe selection with blur rejection and bounded memory.

For every camera, an incoming frame (an (H, W, 3) uint8 RGB image with a stamp) is

1. rejected as **out of order** when its stamp is not newer than the camera's last keyframe
   (a backwards jump larger than ``clock_jump_reset_s``, e.g. a bag restarting or a
   simulator reset, instead clears that camera's keyframes and counts a reset);
2. rejected as **blurred** when its sharpness, the variance of the Laplacian of its grey image
   downscaled to at most ``analysis_max_side`` pixels, is below
   ``blur_min_laplacian_variance``;
3. **kept** when it is the camera's first keyframe, or at least ``keyframe_min_interval_s``
   have passed since the last keyframe, or the view changed by at least
   ``keyframe_min_change`` (``thumbnail_distance`` to the last keyframe);
4. otherwise rejected as **similar**.

Units. Sharpness: grey levels squared (grey in [0, 255], ITU-R 601 luma), of the 3x3
Laplacian ``[[0, 1, 0], [1, -4, 1], [0, 1, 0]]`` at the analysis size (so the threshold does not
depend on the camera resolution). Measured at 320 px: Middlebury temple images (640 x 480,
mostly black background) score about 300, and about 35 after a Gaussian blur of sigma 2 px at
full size; a random 16-px block texture scores about 2700, 130 after sigma 2 px and 15 after
sigma 5 px. The right threshold depends on the scene: watch ``rejected_blur`` and lower
``blur_min_laplacian_variance`` for low-texture scenes (0 disables the test).

View change: the mean absolute difference of two ``thumbnail_size`` x ``thumbnail_size`` grey
thumbnails in [0, 1], each minus its own mean (so a global exposure change is not a view
change). Measured: 0 for the same view, about 0.002 for sensor noise (sigma 5 grey levels),
0.007 for a +30 brightness step, 0.02 - 0.06 between temple views 7.5 - 30 degrees apart on
the ring, about 0.13 between unrelated textures or a shift by a tenth of the image.

Memory: a camera holds at most ``max_keyframes_per_camera`` keyframes (a ring: the oldest is
evicted and counted). A keyframe stores only the image downscaled to at most
``stored_image_max_side`` pixels (640 by default: what the feature matchers of ``fused`` work
at; the ray model itself crops a square and resizes it to 224 px), its grey thumbnail, and its
intrinsics rescaled to the stored size; never the incoming buffer. At 640 x 480 a keyframe
holds 0.9 MB: 30 keyframes of 8 cameras about 220 MB.

All methods are thread-safe (subscription callbacks may run on several executor threads while
the view-set builder reads).
"""

from dataclasses import dataclass, replace
import enum
import itertools
import threading
from typing import Iterable, Optional, Union

import cv2
import numpy as np

from raydiff_ros.geometry.transforms import check_transforms
from raydiff_ros.parameter_fields import check_fields, parameter
from raydiff_ros.pipeline.camera_info import (
    CameraInfoError,
    PinholeIntrinsics,
    intrinsics_for_image,
)
from raydiff_ros.pipeline.image_decoding import PixelView

NS_PER_S = 1_000_000_000
GREY_MAX = 255.0
"""Largest 8-bit grey level (thumbnails are scaled to [0, 1] by it)."""


class KeyframeError(ValueError):
    """Invalid keyframe configuration or input (bad camera index, image, or pose)."""


@dataclass(frozen=True)
class KeyframeConfig:
    """Keyframe selection thresholds (ROS parameters of the same names).

    Each field's meaning, range and default are in its ``parameter(...)`` declaration; the
    thumbnail distance is defined in the module docstring. ``keyframe_min_interval_s`` 0 keeps
    every sharp in-order frame and ``keyframe_min_change`` 1 never triggers; images larger than
    ``analysis_max_side`` are downscaled (area interpolation); ``clock_jump_reset_s`` also
    catches simulator resets.
    """

    keyframe_min_interval_s: float = parameter(
        1.0, 'keep a frame when this long since the cameras last keyframe', minimum=0.0
    )
    keyframe_min_change: float = parameter(
        0.05,
        'keep a frame when the thumbnail distance to the last keyframe reaches this '
        '(mean abs. difference of mean-removed grey thumbnails in [0, 1])',
        minimum=0.0,
        maximum=1.0,
    )
    blur_min_laplacian_variance: float = parameter(
        20.0,
        'reject frames whose Laplacian variance (grey levels^2 at '
        'analysis_max_side) is below; 0 disables',
        minimum=0.0,
    )
    analysis_max_side: int = parameter(
        320,
        'longer side (px) of the image the sharpness and thumbnail are computed on',
        minimum=16,
    )
    thumbnail_size: int = parameter(32, 'side (px) of the grey thumbnail', minimum=4)
    max_keyframes_per_camera: int = parameter(30, 'ring-buffer capacity per camera', minimum=1)
    stored_image_max_side: int = parameter(
        640, 'longer side (px) of stored keyframe images (never upscaled)', minimum=16
    )
    clock_jump_reset_s: float = parameter(
        1.0,
        'a stamp this much older than the last keyframe clears the camera (bag loop)',
        minimum=0.0,
        exclusive_minimum=True,
    )

    def __post_init__(self) -> None:
        check_fields(self, KeyframeError)


class KeyframeDecision(enum.Enum):
    """What ``KeyframeBuffer.offer`` did with a frame."""

    KEPT = 'kept'
    REJECTED_BLUR = 'rejected_blur'
    REJECTED_SIMILAR = 'rejected_similar'
    REJECTED_OUT_OF_ORDER = 'rejected_out_of_order'


@dataclass(frozen=True, eq=False)
class Keyframe:
    """One kept frame of one camera.

    Attributes:
        keyframe_id: running index over all cameras of the buffer (0, 1, 2, ...).
        camera_index: index of the camera in the node's camera list.
        stamp_ns: image stamp, nanoseconds.
        frame_id: the camera's optical frame id.
        image: (h, w, 3) uint8 RGB, downscaled to at most ``stored_image_max_side``.
        thumbnail: (T, T) float32 grey in [0, 1].
        K: (3, 3) intrinsics of ``image`` in pixels, or None when unknown.
        sharpness: variance of the Laplacian (grey levels squared, see module docstring).
        source_size: (width, height) of the incoming image.
        map_T_camera: (4, 4) known pose of the camera in the map (relocalization), or None.
    """

    keyframe_id: int
    camera_index: int
    stamp_ns: int
    frame_id: str
    image: np.ndarray
    thumbnail: np.ndarray
    K: Optional[np.ndarray]
    sharpness: float
    source_size: tuple[int, int]
    map_T_camera: Optional[np.ndarray] = None  # noqa: N815 (frame names)


@dataclass(frozen=True)
class KeyframeCounters:
    """Counts for one camera since start (diagnostics).

    ``received = kept + rejected_blur + rejected_similar + rejected_out_of_order``;
    ``stored`` is the current ring size (kept minus evicted minus cleared on resets).
    """

    received: int = 0
    kept: int = 0
    rejected_blur: int = 0
    rejected_similar: int = 0
    rejected_out_of_order: int = 0
    evicted: int = 0
    resets: int = 0
    stored: int = 0


# ---------------------------------------------------------------------------------------------
# Image measures


def _downscale(image: np.ndarray, max_side: int, copy: bool = True) -> np.ndarray:
    """Resize (area interpolation) so the longer side is at most ``max_side``; a copy unless
    ``copy`` is False and no resize is needed."""
    height, width = image.shape[:2]
    longer = max(height, width)
    if longer <= max_side:
        return np.array(image, copy=True) if copy else image
    scale = max_side / longer
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def grey_image(image: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma of an (H, W, 3) uint8 RGB image: (H, W) uint8."""
    return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)


def laplacian_variance(grey: np.ndarray) -> float:
    """Variance of the 3x3 Laplacian of an (H, W) grey image, grey levels squared."""
    laplacian = cv2.Laplacian(grey.astype(np.float64), cv2.CV_64F, ksize=1)
    return float(laplacian.var())


def make_thumbnail(grey: np.ndarray, size: int) -> np.ndarray:
    """(size, size) float32 grey thumbnail in [0, 1] of an (H, W) uint8 grey image."""
    thumbnail = cv2.resize(grey, (size, size), interpolation=cv2.INTER_AREA)
    return thumbnail.astype(np.float32) / np.float32(GREY_MAX)


def thumbnail_distance(a: np.ndarray, b: np.ndarray) -> float:
    """View change between two thumbnails (T, T): mean |(a - mean a) - (b - mean b)|, [0, 1]."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise KeyframeError(f'thumbnails differ in shape: {a.shape} vs {b.shape}')
    return float(np.mean(np.abs((a - a.mean()) - (b - b.mean()))))


def measure_frame(
    image: Union[np.ndarray, PixelView], config: KeyframeConfig
) -> tuple[float, np.ndarray]:
    """Sharpness (Laplacian variance at the analysis size) and thumbnail (T, T) of a frame.

    ``image`` is (H, W, 3) uint8 RGB or a ``PixelView`` (measured in its own channel order on
    the downscaled pixels: the same values, without converting the full-size image).
    """
    view = _check_image(image)
    grey = view.grey(_downscale(view.pixels, config.analysis_max_side, copy=False))
    return laplacian_variance(grey), make_thumbnail(grey, config.thumbnail_size)


def _check_image(image: Union[np.ndarray, PixelView]) -> PixelView:
    """The frame as a ``PixelView`` (an RGB array is wrapped, not copied)."""
    if not isinstance(image, PixelView):
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise KeyframeError(
                f'keyframe images must be (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}'
            )
        image = PixelView(image, 'rgb')
    if image.pixels.shape[0] == 0 or image.pixels.shape[1] == 0:
        raise KeyframeError(f'keyframe image is empty: {image.shape}')
    return image


# ---------------------------------------------------------------------------------------------
# The buffer


class _CameraState:
    def __init__(self) -> None:
        self.keyframes: list[Keyframe] = []
        self.counters = KeyframeCounters()

    def count(self, **increments: int) -> None:
        values = {k: getattr(self.counters, k) + v for k, v in increments.items()}
        self.counters = replace(self.counters, stored=len(self.keyframes), **values)


class KeyframeBuffer:
    """Keyframe ring buffers of ``num_cameras`` cameras (thread-safe)."""

    def __init__(self, num_cameras: int, config: KeyframeConfig = KeyframeConfig()) -> None:
        if num_cameras < 1:
            raise KeyframeError(f'num_cameras must be >= 1, got {num_cameras}')
        self._config = config
        self._cameras = [_CameraState() for _ in range(num_cameras)]
        self._ids = itertools.count()
        self._lock = threading.Lock()

    @property
    def config(self) -> KeyframeConfig:
        return self._config

    @property
    def num_cameras(self) -> int:
        return len(self._cameras)

    def _state(self, camera_index: int) -> _CameraState:
        if not 0 <= camera_index < len(self._cameras):
            raise KeyframeError(
                f'camera_index {camera_index} out of range for {len(self._cameras)} cameras'
            )
        return self._cameras[camera_index]

    def offer(
        self,
        camera_index: int,
        stamp_ns: int,
        image: Union[np.ndarray, PixelView],
        frame_id: str = '',
        intrinsics: Optional[PinholeIntrinsics] = None,
        map_T_camera: Optional[np.ndarray] = None,
    ) -> KeyframeDecision:
        """Consider one frame; keep it as a keyframe or count why not.

        Args:
            camera_index: index of the camera in the node's camera list.
            stamp_ns: image stamp in nanoseconds.
            image: (H, W, 3) uint8 RGB (e.g. from ``image_decoding``), or a ``PixelView``
                of it (then only a kept frame is converted to RGB, after its downscale, and
                rejected frames cost a downscaled grey image only); not retained.
            frame_id: the camera's optical frame.
            intrinsics: the camera's intrinsics (rescaled here to the image size, then to the
                stored size), or None when unknown.
            map_T_camera: (4, 4) pose of the camera in the map at ``stamp_ns`` when known.

        Returns:
            The decision.

        Raises:
            KeyframeError: bad camera index or image.
            CameraInfoError: intrinsics whose aspect ratio does not match the image.
        """
        state = self._state(camera_index)
        view = _check_image(image)
        stamp_ns = int(stamp_ns)
        if map_T_camera is not None:
            map_T_camera = check_transforms(map_T_camera, 'map_T_camera').copy()
        config = self._config
        sharpness, thumbnail = measure_frame(view, config)
        with self._lock:
            last = state.keyframes[-1] if state.keyframes else None
            if last is not None and stamp_ns <= last.stamp_ns:
                if (last.stamp_ns - stamp_ns) > config.clock_jump_reset_s * NS_PER_S:
                    state.keyframes.clear()
                    state.count(resets=1)
                    last = None
                else:
                    state.count(received=1, rejected_out_of_order=1)
                    return KeyframeDecision.REJECTED_OUT_OF_ORDER
            if sharpness < config.blur_min_laplacian_variance:
                state.count(received=1, rejected_blur=1)
                return KeyframeDecision.REJECTED_BLUR
            if last is not None:
                elapsed_ns = stamp_ns - last.stamp_ns
                changed = thumbnail_distance(thumbnail, last.thumbnail)
                if (
                    elapsed_ns < config.keyframe_min_interval_s * NS_PER_S
                    and changed < config.keyframe_min_change
                ):
                    state.count(received=1, rejected_similar=1)
                    return KeyframeDecision.REJECTED_SIMILAR
            state.keyframes.append(
                self._make_keyframe(
                    camera_index, stamp_ns, view, frame_id, intrinsics, map_T_camera,
                    sharpness, thumbnail,
                )
            )
            evicted = max(0, len(state.keyframes) - config.max_keyframes_per_camera)
            del state.keyframes[:evicted]
            state.count(received=1, kept=1, evicted=evicted)
            return KeyframeDecision.KEPT

    def _make_keyframe(
        self,
        camera_index: int,
        stamp_ns: int,
        view: PixelView,
        frame_id: str,
        intrinsics: Optional[PinholeIntrinsics],
        map_T_camera: Optional[np.ndarray],
        sharpness: float,
        thumbnail: np.ndarray,
    ) -> Keyframe:
        height, width = view.pixels.shape[:2]
        stored = view.as_rgb(
            _downscale(view.pixels, self._config.stored_image_max_side, copy=False)
        )
        K = None
        if intrinsics is not None:
            K = self._stored_K(intrinsics, (width, height), stored.shape)
        return Keyframe(
            keyframe_id=next(self._ids),
            camera_index=camera_index,
            stamp_ns=stamp_ns,
            frame_id=str(frame_id),
            image=stored,
            thumbnail=thumbnail,
            K=K,
            sharpness=sharpness,
            source_size=(width, height),
            map_T_camera=map_T_camera,
        )

    @staticmethod
    def _stored_K(intrinsics: PinholeIntrinsics, source_size: tuple[int, int],
                  stored_shape: tuple[int, ...]) -> np.ndarray:
        """(3, 3) intrinsics of a stored image of ``stored_shape`` (h, w, 3) whose incoming
        image was ``source_size`` (width, height); CameraInfoError on an aspect mismatch."""
        return intrinsics_for_image(intrinsics, *source_size).scaled_to(
            stored_shape[1], stored_shape[0]
        ).K

    def set_map_pose(self, camera_index: int, stamp_ns: int, map_T_camera: np.ndarray) -> bool:
        """Attach a known (4, 4) ``map_T_camera`` to the stored keyframe with this stamp.

        For map poses that arrive after the image (a TF lookup at the image stamp).

        Returns:
            Whether a keyframe with that stamp was stored.
        """
        state = self._state(camera_index)
        map_T_camera = check_transforms(map_T_camera, 'map_T_camera').copy()
        with self._lock:
            for position, keyframe in enumerate(state.keyframes):
                if keyframe.stamp_ns == int(stamp_ns):
                    state.keyframes[position] = replace(keyframe, map_T_camera=map_T_camera)
                    return True
        return False

    def attach_intrinsics(self, camera_index: int, intrinsics: PinholeIntrinsics) -> int:
        """Give the camera's stored keyframes that have no intrinsics these (rescaled to each).

        For images that arrived before the camera's first CameraInfo (topics are not ordered
        with one another): without this, a static rig would keep estimating those keyframes
        with guessed intrinsics. Keyframes whose size does not fit ``intrinsics`` (aspect
        ratio) keep None; keyframes that have intrinsics keep theirs.

        Returns:
            How many keyframes got intrinsics.
        """
        state = self._state(camera_index)
        attached = 0
        with self._lock:
            for position, keyframe in enumerate(state.keyframes):
                if keyframe.K is not None:
                    continue
                try:
                    K = self._stored_K(intrinsics, keyframe.source_size, keyframe.image.shape)
                except CameraInfoError:
                    continue
                state.keyframes[position] = replace(keyframe, K=K)
                attached += 1
        return attached

    def keyframes(self, camera_index: int) -> tuple[Keyframe, ...]:
        """The camera's stored keyframes, oldest first (a snapshot)."""
        state = self._state(camera_index)
        with self._lock:
            return tuple(state.keyframes)

    def all_keyframes(self) -> tuple[Keyframe, ...]:
        """Every stored keyframe of every camera, sorted by stamp (then keyframe id)."""
        with self._lock:
            frames = [k for state in self._cameras for k in state.keyframes]
        return tuple(sorted(frames, key=lambda k: (k.stamp_ns, k.keyframe_id)))

    def latest(self, camera_index: int) -> Optional[Keyframe]:
        """The camera's newest keyframe, or None."""
        state = self._state(camera_index)
        with self._lock:
            return state.keyframes[-1] if state.keyframes else None

    def counters(self, camera_index: int) -> KeyframeCounters:
        """A snapshot of the camera's counters."""
        state = self._state(camera_index)
        with self._lock:
            return state.counters

    def discard(self, keyframe_ids: Iterable[int]) -> int:
        """Drop the stored keyframes of these ids (e.g. of a set that ran out of memory);
        returns how many were dropped (ids no longer stored are ignored)."""
        drop = set(keyframe_ids)
        dropped = 0
        with self._lock:
            for state in self._cameras:
                kept = [k for k in state.keyframes if k.keyframe_id not in drop]
                dropped += len(state.keyframes) - len(kept)
                state.keyframes[:] = kept
                state.count()
        return dropped

    def clear(self) -> None:
        """Drop every stored keyframe (counters are kept; e.g. on lifecycle cleanup)."""
        with self._lock:
            for state in self._cameras:
                state.keyframes.clear()
                state.count()
