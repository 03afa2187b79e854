"""Decode raw and compressed image buffers (plain values of ROS image messages) into RGB arrays.

The ROS node takes the fields out of ``sensor_msgs/Image`` (``encoding``, ``height``,
``width``, ``step``, ``is_bigendian``, ``data``) or ``sensor_msgs/CompressedImage``
(``format``, ``data``) and hands them to ``decode_raw_image`` / ``decode_compressed_image``;
both return an (H, W, 3) uint8 RGB array that owns its memory (it never aliases ``data``).

Raw encodings (names as in ``sensor_msgs/image_encodings``; matched case-insensitively):

=========  ===============  ==========================================================
encoding   bytes per pixel  conversion
=========  ===============  ==========================================================
rgb8       3                as is
bgr8       3                channel order reversed
rgba8      4                alpha dropped
bgra8      4                alpha dropped, channel order reversed
mono8      1                grey replicated to 3 channels
mono16     2                ``round(v * 255 / 65535)`` (0 -> 0, 65535 -> 255), replicated;
                            byte order from ``is_bigendian``
=========  ===============  ==========================================================

Rows may be padded: ``step`` (bytes per row) may exceed ``width * bytes_per_pixel``; the
padding is skipped. ``data`` must hold exactly ``step * height`` bytes.

Compressed formats: ``format`` is either a bare codec (``"jpeg"``, ``"jpg"``, ``"png"``) or the
image_transport form ``"<original encoding>; <codec> compressed <encoding>"``, e.g.
``"rgb8; jpeg compressed bgr8"``. The bytes are decoded with ``cv2.imdecode`` (which
returns OpenCV's BGR/BGRA order for colour files); when the part after ``compressed`` says
the encoder was given RGB pixels (``rgb8``/``rgba8``) no channel swap is needed. Depth
streams (``compressedDepth``) are refused: they are not camera images.
"""

from typing import Union

import cv2
import numpy as np

MONO16_MAX = 65535
"""Largest mono16 value; it maps to 255."""

UINT8_MAX = 255

BYTES_PER_PIXEL = {
    'rgb8': 3,
    'bgr8': 3,
    'rgba8': 4,
    'bgra8': 4,
    'mono8': 1,
    'mono16': 2,
}
"""Bytes per pixel of every supported raw encoding."""

SUPPORTED_CODECS = ('jpeg', 'jpg', 'png')
"""Codecs accepted in a CompressedImage ``format``."""

RGB_ORDER_ENCODINGS = ('rgb8', 'rgba8', 'rgb16', 'rgba16')
"""Encodings after ``compressed`` meaning the encoder was given RGB (not BGR) pixel order."""

DEPTH_FORMAT_MARKER = 'compresseddepth'

ImageBuffer = Union[bytes, bytearray, memoryview, np.ndarray]
"""Any buffer of bytes: ``bytes``, ``bytearray``, ``array.array('B')``, uint8 arrays."""


class ImageDecodingError(ValueError):
    """An image buffer cannot be decoded; the message names the problem."""


class UnsupportedEncodingError(ImageDecodingError):
    """The raw encoding or the compressed format is not one this package decodes."""


class ImageLayoutError(ImageDecodingError):
    """Size fields are invalid or disagree with the data (zero size, short step, truncation)."""


class CorruptImageError(ImageDecodingError):
    """Compressed bytes are empty or cannot be decoded."""


def _as_bytes(data: ImageBuffer) -> np.ndarray:
    """View any byte buffer as a flat uint8 array (no copy where possible)."""
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8:
            raise ImageDecodingError(f'image data array must be uint8, got {data.dtype}')
        return data.reshape(-1)
    try:
        return np.frombuffer(memoryview(data).cast('B'), dtype=np.uint8)
    except TypeError as error:
        raise ImageDecodingError(
            f'image data must be a byte buffer, got {type(data).__name__}'
        ) from error


def _check_positive_int(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ImageLayoutError(f'{name} must be an integer, got {value!r}')
    if value <= 0:
        raise ImageLayoutError(f'{name} must be positive, got {value}')
    return int(value)


def mono16_to_uint8(values: np.ndarray) -> np.ndarray:
    """Scale uint16 grey values (any shape) to uint8: ``round(v * 255 / 65535)``."""
    scaled = (values.astype(np.uint32) * UINT8_MAX + MONO16_MAX // 2) // MONO16_MAX
    return scaled.astype(np.uint8)


def decode_raw_image(
    encoding: str,
    height: int,
    width: int,
    step: int,
    is_bigendian: bool,
    data: ImageBuffer,
) -> np.ndarray:
    """Decode the fields of a ``sensor_msgs/Image`` into RGB.

    Args:
        encoding: one of ``BYTES_PER_PIXEL`` (case-insensitive).
        height: rows, > 0.
        width: columns, > 0.
        step: bytes per row, >= ``width * bytes_per_pixel`` (extra bytes are padding).
        is_bigendian: byte order of multi-byte pixels (used by mono16 only).
        data: ``step * height`` bytes.

    Returns:
        (height, width, 3) uint8 RGB, a new array.

    Raises:
        UnsupportedEncodingError: unknown encoding.
        ImageLayoutError: non-positive sizes, ``step`` too small, data size != step * height.
    """
    name = str(encoding).strip().lower()
    if name not in BYTES_PER_PIXEL:
        raise UnsupportedEncodingError(
            f'unsupported image encoding {encoding!r}; supported: {", ".join(BYTES_PER_PIXEL)}'
        )
    height = _check_positive_int(height, 'height')
    width = _check_positive_int(width, 'width')
    step = _check_positive_int(step, 'step')
    bytes_per_pixel = BYTES_PER_PIXEL[name]
    row_bytes = width * bytes_per_pixel
    if step < row_bytes:
        raise ImageLayoutError(
            f'step {step} is smaller than width * bytes per pixel = {width} * {bytes_per_pixel}'
            f' = {row_bytes} for {name}'
        )
    flat = _as_bytes(data)
    expected = step * height
    if flat.size < expected:
        raise ImageLayoutError(
            f'image data truncated: {flat.size} bytes, expected step * height = {expected}'
        )
    if flat.size > expected:
        raise ImageLayoutError(
            f'image data too long: {flat.size} bytes, expected step * height = {expected}'
        )

    rows = flat.reshape(height, step)[:, :row_bytes]
    if name == 'mono16':
        dtype = np.dtype('>u2') if is_bigendian else np.dtype('<u2')
        grey = mono16_to_uint8(np.ascontiguousarray(rows).view(dtype))
        return np.repeat(grey[:, :, None], 3, axis=2)
    pixels = rows.reshape(height, width, bytes_per_pixel)
    if name == 'mono8':
        return np.repeat(pixels, 3, axis=2)
    if name in ('rgb8', 'rgba8'):
        return np.array(pixels[:, :, :3], order='C', copy=True)
    return np.array(pixels[:, :, 2::-1], order='C', copy=True)  # bgr8, bgra8


def parse_compressed_format(format_string: str) -> tuple[str, bool]:
    """Split a CompressedImage ``format`` into (codec, encoder_saw_rgb_order).

    ``"jpeg"`` -> ("jpeg", False); ``"rgb8; jpeg compressed bgr8"`` -> ("jpeg", False);
    ``"rgb8; png compressed rgb8"`` -> ("png", True). An empty format means "let the decoder
    find out" and returns ("", False).

    Raises:
        UnsupportedEncodingError: a depth stream or an unknown codec.
    """
    text = str(format_string).strip().lower()
    if DEPTH_FORMAT_MARKER in text.replace(' ', ''):
        raise UnsupportedEncodingError(
            f'compressed depth images are not camera images: format {format_string!r}'
        )
    description = text.split(';', 1)[1].strip() if ';' in text else text
    words = description.split()
    codec = words[0] if words else ''
    encoder_saw_rgb = False
    if 'compressed' in words:
        after = words[words.index('compressed') + 1:]
        encoder_saw_rgb = bool(after) and after[0] in RGB_ORDER_ENCODINGS
    if codec and codec not in SUPPORTED_CODECS:
        raise UnsupportedEncodingError(
            f'unsupported compressed format {format_string!r}; '
            f'codecs: {", ".join(SUPPORTED_CODECS)}'
        )
    return codec, encoder_saw_rgb


def decode_compressed_image(format_string: str, data: ImageBuffer) -> np.ndarray:
    """Decode the fields of a ``sensor_msgs/CompressedImage`` into RGB.

    Args:
        format_string: the message's ``format`` (see the module docstring).
        data: the compressed bytes (JPEG or PNG; 8- or 16-bit, grey, colour or with alpha).

    Returns:
        (H, W, 3) uint8 RGB. 16-bit files are scaled as mono16.

    Raises:
        UnsupportedEncodingError: a depth stream or an unknown codec.
        CorruptImageError: empty or undecodable bytes.
    """
    _, encoder_saw_rgb = parse_compressed_format(format_string)
    flat = _as_bytes(data)
    if flat.size == 0:
        raise CorruptImageError('compressed image data is empty')
    try:
        decoded = cv2.imdecode(flat, cv2.IMREAD_UNCHANGED)
    except cv2.error as error:
        raise CorruptImageError(
            f'cannot decode compressed image ({format_string!r}): {error}'
        ) from error
    if decoded is None or decoded.size == 0:
        raise CorruptImageError(
            f'cannot decode compressed image ({format_string!r}, {flat.size} bytes)'
        )
    if decoded.dtype == np.uint16:
        decoded = mono16_to_uint8(decoded)
    elif decoded.dtype != np.uint8:
        raise UnsupportedEncodingError(f'decoded image has unsupported depth {decoded.dtype}')
    if decoded.ndim == 2:
        return np.repeat(decoded[:, :, None], 3, axis=2)
    channels = decoded.shape[2]
    if channels == 1:
        return np.repeat(decoded, 3, axis=2)
    if channels not in (3, 4):
        raise UnsupportedEncodingError(f'decoded image has {channels} channels')
    colour = decoded[:, :, :3]
    if not encoder_saw_rgb:
        colour = colour[:, :, ::-1]
    return np.ascontiguousarray(colour)
