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

from dataclasses import dataclass
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


@dataclass(frozen=True)
class PixelView:
    """Pixels of a decoded image in their native channel order, possibly aliasing the message.

    The cheap form for the keyframe selector: it measures a downscaled grey image from
    ``pixels`` directly and converts to RGB (``rgb``, ``resized_rgb``) only the frames it keeps.
    Resizing and the luma conversion treat channels independently, so every result equals the
    one from the decoded RGB image (``decode_raw_image``) bit for bit.

    Attributes:
        pixels: (H, W, 3 or 4) uint8 in ``order``; rows may be padded (a strided view) and may
            alias the message buffer: use it before the message is released, never keep it.
        order: ``'rgb'``, ``'bgr'``, ``'rgba'`` or ``'bgra'`` (alpha is ignored).
    """

    pixels: np.ndarray
    order: str

    def __post_init__(self) -> None:
        channels = len(self.order)
        if self.order not in PIXEL_ORDERS or self.pixels.dtype != np.uint8 or (
            self.pixels.ndim != 3 or self.pixels.shape[2] != channels
        ):
            raise ImageDecodingError(
                f'pixel view must be (H, W, {channels}) uint8 in one of {PIXEL_ORDERS}, got '
                f'{self.pixels.shape} {self.pixels.dtype} {self.order!r}'
            )

    @property
    def shape(self) -> tuple[int, int, int]:
        """(H, W, 3): the shape of the RGB image."""
        return (self.pixels.shape[0], self.pixels.shape[1], 3)

    def as_rgb(self, pixels: np.ndarray) -> np.ndarray:
        """``pixels`` (any size, in ``order``) as a new C-contiguous (h, w, 3) RGB array."""
        if self.order in ('rgb', 'rgba'):
            return np.array(pixels[:, :, :3], order='C', copy=True)
        return np.array(pixels[:, :, 2::-1], order='C', copy=True)

    def rgb(self) -> np.ndarray:
        """The whole image as a new (H, W, 3) uint8 RGB array (never aliases the message)."""
        return self.as_rgb(self.pixels)

    def grey(self, pixels: np.ndarray) -> np.ndarray:
        """ITU-R 601 luma (h, w) uint8 of ``pixels`` (any size, in ``order``)."""
        return cv2.cvtColor(np.ascontiguousarray(pixels), GREY_CONVERSIONS[self.order])


PIXEL_ORDERS = ('rgb', 'bgr', 'rgba', 'bgra')
"""Channel orders of a ``PixelView``."""

GREY_CONVERSIONS = {
    'rgb': cv2.COLOR_RGB2GRAY,
    'bgr': cv2.COLOR_BGR2GRAY,
    'rgba': cv2.COLOR_RGBA2GRAY,
    'bgra': cv2.COLOR_BGRA2GRAY,
}
"""OpenCV conversion to grey of each pixel order."""


def raw_image_view(
    encoding: str,
    height: int,
    width: int,
    step: int,
    is_bigendian: bool,
    data: ImageBuffer,
) -> PixelView:
    """The fields of a ``sensor_msgs/Image`` as a ``PixelView``, copying no pixel of colour
    encodings (rgb8, bgr8, rgba8, bgra8: the view aliases ``data``); mono8 and mono16 are
    converted to a new RGB array. Arguments and errors as ``decode_raw_image``."""
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
        return PixelView(np.repeat(grey[:, :, None], 3, axis=2), 'rgb')
    pixels = rows.reshape(height, width, bytes_per_pixel)
    if name == 'mono8':
        return PixelView(np.repeat(pixels, 3, axis=2), 'rgb')
    return PixelView(pixels, name[:-1])


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
    view = raw_image_view(encoding, height, width, step, is_bigendian, data)
    return view.pixels if view.pixels.base is None else view.rgb()  # mono: a new array


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


def compressed_image_view(format_string: str, data: ImageBuffer) -> PixelView:
    """The fields of a ``sensor_msgs/CompressedImage`` decoded into a ``PixelView`` (OpenCV's
    own channel order: no swap copy). Arguments and errors as ``decode_compressed_image``."""
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
        return PixelView(np.repeat(decoded[:, :, None], 3, axis=2), 'rgb')
    channels = decoded.shape[2]
    if channels == 1:
        return PixelView(np.repeat(decoded, 3, axis=2), 'rgb')
    if channels not in (3, 4):
        raise UnsupportedEncodingError(f'decoded image has {channels} channels')
    order = 'rgb' if encoder_saw_rgb else 'bgr'
    return PixelView(decoded, order + ('a' if channels == 4 else ''))


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
    view = compressed_image_view(format_string, data)
    if view.order == 'rgb' and view.pixels.flags.c_contiguous:
        return view.pixels
    return view.rgb()
