"""Property-based fuzzing of the pure input boundaries: image buffers and CameraInfo values.

Whatever a message carries, decoding either returns a well-formed (H, W, 3) uint8 RGB array
or raises the package's own error type (``ImageDecodingError`` / ``CameraInfoError``); nothing
else escapes. Example counts are fixed (``max_examples``) so each test stays a few seconds on
one slow core.
"""

import math

import cv2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
import numpy as np

from raydiff_ros.pipeline.camera_info import (
    CameraInfoConfig,
    CameraInfoError,
    PinholeIntrinsics,
    intrinsics_for_image,
    intrinsics_from_camera_info,
)
from raydiff_ros.pipeline.image_decoding import (
    BYTES_PER_PIXEL,
    ImageDecodingError,
    decode_compressed_image,
    decode_raw_image,
)

RAW_EXAMPLES = 1500
COMPRESSED_EXAMPLES = 800
CAMERA_INFO_EXAMPLES = 1500
RESCALE_EXAMPLES = 1000


def fuzz(examples: int) -> settings:
    """Settings of a fuzz test: a fixed number of examples, no per-example deadline."""
    return settings(max_examples=examples, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

ENCODINGS = st.one_of(
    st.sampled_from(sorted(BYTES_PER_PIXEL)),
    st.sampled_from(['RGB8', ' bgr8 ', 'mono16', 'bayer_rggb8', '16UC1', '32FC1', 'yuv422', '']),
    st.text(max_size=12),
)
SIZES = st.one_of(st.integers(-3, 24), st.sampled_from([0, 2**31 - 1, 2**32 + 1, -(2**31)]))
BUFFERS = st.one_of(
    st.binary(max_size=2048),
    st.binary(max_size=64).map(bytearray),
    st.binary(max_size=64).map(memoryview),
)


def _check_rgb(image: np.ndarray, height: int, width: int) -> None:
    assert image.shape == (height, width, 3) and image.dtype == np.uint8
    assert image.flags.c_contiguous and image.flags.owndata or image.base is not None


@fuzz(RAW_EXAMPLES)
@given(encoding=ENCODINGS, height=SIZES, width=SIZES, step=SIZES, is_bigendian=st.booleans(),
       data=BUFFERS)
def test_raw_image_fields_decode_or_raise_a_decoding_error(encoding, height, width, step,
                                                           is_bigendian, data):
    try:
        image = decode_raw_image(encoding, height, width, step, is_bigendian, data)
    except ImageDecodingError as error:
        assert str(error)
        return
    assert image.shape == (height, width, 3) and image.dtype == np.uint8


@fuzz(RAW_EXAMPLES)
@given(encoding=st.sampled_from(sorted(BYTES_PER_PIXEL)), height=st.integers(1, 12),
       width=st.integers(1, 12), padding=st.integers(0, 5), delta=st.integers(-7, 7),
       is_bigendian=st.booleans(), seed=st.integers(0, 2**16))
def test_well_sized_raw_images_decode_and_wrong_sizes_are_refused(
        encoding, height, width, padding, delta, is_bigendian, seed):
    """Near-valid layouts (padding, truncation, extra bytes) hit every branch of the checks."""
    step = width * BYTES_PER_PIXEL[encoding] + padding
    size = max(0, step * height + delta)
    data = np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8)
    if delta != 0:
        try:
            decode_raw_image(encoding, height, width, step, is_bigendian, data.tobytes())
        except ImageDecodingError as error:
            assert 'truncated' in str(error) or 'too long' in str(error)
            return
        raise AssertionError('a buffer of the wrong size was accepted')
    image = decode_raw_image(encoding, height, width, step, is_bigendian, data)
    _check_rgb(image, height, width)
    assert not np.shares_memory(image, data)


FORMATS = st.one_of(
    st.sampled_from(['jpeg', 'png', 'jpg', '', 'rgb8; jpeg compressed bgr8',
                     'rgb8; png compressed rgb8', '16UC1; compressedDepth png', 'tiff', 'bmp',
                     '; compressed', 'png compressed', ';;;']),
    st.text(max_size=30),
)


def _encoded(kind: str, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    if kind == 'png16':
        ok, buffer = cv2.imencode('.png', rng.integers(0, 65536, (5, 7), dtype=np.uint16))
    elif kind == 'png4':
        ok, buffer = cv2.imencode('.png', rng.integers(0, 256, (5, 7, 4), dtype=np.uint8))
    else:
        ok, buffer = cv2.imencode('.' + kind, rng.integers(0, 256, (5, 7, 3), dtype=np.uint8))
    assert ok
    return buffer.tobytes()


@st.composite
def compressed_payloads(draw) -> bytes:
    """Random bytes, or a real PNG/JPEG that is truncated, has bytes flipped, or is intact."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=512))
    payload = bytearray(_encoded(draw(st.sampled_from(['png', 'jpg', 'png16', 'png4'])),
                                 draw(st.integers(0, 100))))
    mutation = draw(st.sampled_from(['none', 'truncate', 'flip', 'append']))
    if mutation == 'truncate':
        payload = payload[:draw(st.integers(0, len(payload)))]
    elif mutation == 'flip':
        for index in draw(st.lists(st.integers(0, len(payload) - 1), min_size=1, max_size=8)):
            payload[index] ^= 0xFF
    elif mutation == 'append':
        payload += draw(st.binary(min_size=1, max_size=64))
    return bytes(payload)


@fuzz(COMPRESSED_EXAMPLES)
@given(format_string=FORMATS, data=compressed_payloads())
def test_compressed_data_decodes_or_raises_a_decoding_error(format_string, data):
    try:
        image = decode_compressed_image(format_string, data)
    except ImageDecodingError as error:
        assert str(error)
        return
    assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8
    assert image.shape[0] > 0 and image.shape[1] > 0


FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1.0, -500.0, 500.0, 1e-300, 1e308, math.nan, math.inf]),
)


@st.composite
def pinhole_k(draw) -> list:
    """Nine values: often a plausible K (possibly with NaN / zero / negative focal lengths)."""
    if draw(st.booleans()):
        return draw(st.lists(FLOATS, max_size=14))
    fx, fy, cx, cy = (draw(FLOATS) for _ in range(4))
    return [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]


@fuzz(CAMERA_INFO_EXAMPLES)
@given(k=pinhole_k(), width=SIZES, height=SIZES,
       p=st.one_of(st.none(), st.lists(FLOATS, max_size=14)),
       d=st.one_of(st.none(), st.lists(FLOATS, max_size=8)),
       distortion_model=st.text(max_size=10), source=st.sampled_from(['k', 'p']))
def test_camera_info_values_give_valid_intrinsics_or_a_camera_info_error(
        k, width, height, p, d, distortion_model, source):
    config = CameraInfoConfig(intrinsics_source=source)
    try:
        intrinsics = intrinsics_from_camera_info(k, width, height, p, d, distortion_model,
                                                 config)
    except CameraInfoError as error:
        assert str(error)
        return
    assert intrinsics.fx > 0 and intrinsics.fy > 0
    assert all(math.isfinite(v) for v in (intrinsics.fx, intrinsics.fy, intrinsics.cx,
                                          intrinsics.cy, intrinsics.skew))
    assert intrinsics.width == width > 0 and intrinsics.height == height > 0
    assert np.all(np.isfinite(intrinsics.K))


@fuzz(RESCALE_EXAMPLES)
@given(focal=st.floats(1e-3, 1e6), width=st.integers(1, 4096), height=st.integers(1, 4096),
       target_width=SIZES, target_height=SIZES,
       tolerance=st.floats(0.0, 0.99))
def test_rescaling_to_an_image_size_gives_finite_intrinsics_or_a_camera_info_error(
        focal, width, height, target_width, target_height, tolerance):
    intrinsics = PinholeIntrinsics(focal, focal, width / 2, height / 2, width, height)
    config = CameraInfoConfig(aspect_ratio_tolerance=tolerance)
    try:
        scaled = intrinsics_for_image(intrinsics, target_width, target_height, config)
    except CameraInfoError as error:
        assert str(error)
        return
    assert scaled.width == target_width and scaled.height == target_height
    assert scaled.fx > 0 and np.all(np.isfinite(scaled.K))
