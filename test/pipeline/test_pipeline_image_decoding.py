"""Raw and compressed image decoding against hand-built buffers with known pixel values."""

import array

import cv2
import numpy as np
import pytest

from raydiff_ros.pipeline.image_decoding import (
    CorruptImageError,
    ImageDecodingError,
    ImageLayoutError,
    PixelView,
    UnsupportedEncodingError,
    compressed_image_view,
    decode_compressed_image,
    decode_raw_image,
    mono16_to_uint8,
    parse_compressed_format,
    raw_image_view,
)

PAD = 0xEE  # padding byte value: must never show up in a decoded image

# A 2 x 3 RGB image with distinct channel values.
RGB = np.array(
    [[[255, 0, 0], [0, 255, 0], [0, 0, 255]],
     [[10, 20, 30], [40, 50, 60], [70, 80, 90]]],
    dtype=np.uint8,
)


def _padded(rows: np.ndarray, padding: int) -> bytes:
    """Rows (H, row_bytes) uint8 with ``padding`` PAD bytes appended to each row."""
    pad = np.full((rows.shape[0], padding), PAD, dtype=np.uint8)
    return np.concatenate([rows, pad], axis=1).tobytes()


@pytest.mark.parametrize('padding', [0, 5])
@pytest.mark.parametrize(
    'encoding, channels',
    [
        ('rgb8', lambda img: img),
        ('bgr8', lambda img: img[:, :, ::-1]),
        ('rgba8', lambda img: np.dstack([img, np.full(img.shape[:2], 7, np.uint8)])),
        ('bgra8', lambda img: np.dstack([img[:, :, ::-1], np.full(img.shape[:2], 7, np.uint8)])),
    ],
)
def test_colour_encodings_decode_to_rgb(encoding, channels, padding):
    pixels = channels(RGB)
    row_bytes = pixels.shape[1] * pixels.shape[2]
    data = _padded(pixels.reshape(2, row_bytes), padding)
    decoded = decode_raw_image(encoding, 2, 3, row_bytes + padding, False, data)
    assert decoded.dtype == np.uint8 and decoded.shape == (2, 3, 3)
    np.testing.assert_array_equal(decoded, RGB)


def test_encoding_names_are_case_insensitive():
    data = RGB.tobytes()
    np.testing.assert_array_equal(decode_raw_image('RGB8', 2, 3, 9, False, data), RGB)


@pytest.mark.parametrize('padding', [0, 3])
def test_mono8_is_replicated_to_three_channels(padding):
    grey = np.array([[0, 100, 255], [1, 2, 3]], dtype=np.uint8)
    decoded = decode_raw_image('mono8', 2, 3, 3 + padding, False, _padded(grey, padding))
    np.testing.assert_array_equal(decoded, np.repeat(grey[:, :, None], 3, axis=2))


MONO16 = np.array([[0, 257, 65535], [32768, 256, 1]], dtype=np.uint16)
# round(v * 255 / 65535): 257 -> 1, 32768 -> 127.50 -> 128, 256 -> 0.996 -> 1, 1 -> 0.
MONO16_AS_8 = np.array([[0, 1, 255], [128, 1, 0]], dtype=np.uint8)


@pytest.mark.parametrize('big_endian', [False, True])
@pytest.mark.parametrize('padding', [0, 2, 3])
def test_mono16_scaled_to_8_bit_honours_byte_order_and_padding(big_endian, padding):
    dtype = '>u2' if big_endian else '<u2'
    rows = MONO16.astype(dtype).view(np.uint8).reshape(2, 6)
    decoded = decode_raw_image('mono16', 2, 3, 6 + padding, big_endian, _padded(rows, padding))
    np.testing.assert_array_equal(decoded[:, :, 0], MONO16_AS_8)
    np.testing.assert_array_equal(decoded[:, :, 0], decoded[:, :, 2])


def test_mono16_with_the_wrong_byte_order_flag_reads_swapped_bytes():
    # 0x0100 = 256 stored big-endian reads as 1 little-endian; 0xFF00 reads as 0x00FF = 255.
    values = np.array([[256, 0xFF00]], dtype='>u2')
    as_big = decode_raw_image('mono16', 1, 2, 4, True, values.tobytes())[0, :, 0]
    as_little = decode_raw_image('mono16', 1, 2, 4, False, values.tobytes())[0, :, 0]
    np.testing.assert_array_equal(as_big, mono16_to_uint8(np.array([256, 0xFF00])))
    np.testing.assert_array_equal(as_little, mono16_to_uint8(np.array([1, 255])))


def test_ros_array_and_numpy_buffers_are_accepted_and_never_aliased():
    data = array.array('B', RGB.tobytes())
    decoded = decode_raw_image('rgb8', 2, 3, 9, False, data)
    np.testing.assert_array_equal(decoded, RGB)
    buffer = np.frombuffer(RGB.tobytes(), dtype=np.uint8).copy()
    decoded = decode_raw_image('rgb8', 2, 3, 9, False, buffer)
    assert not np.shares_memory(decoded, buffer)


@pytest.mark.parametrize('padding', [0, 5])
@pytest.mark.parametrize('encoding', ['rgb8', 'bgr8', 'rgba8', 'bgra8'])
def test_colour_views_alias_the_message_buffer_and_convert_to_the_decoded_rgb(encoding, padding):
    channels = len(encoding) - 1
    pixels = RGB if encoding.startswith('rgb') else RGB[:, :, ::-1]
    if channels == 4:
        pixels = np.dstack([pixels, np.full(RGB.shape[:2], 7, np.uint8)])
    data = array.array('B', _padded(pixels.reshape(2, -1), padding))
    view = raw_image_view(encoding, 2, 3, 3 * channels + padding, False, data)
    assert view.order == encoding[:-1] and view.shape == (2, 3, 3)
    assert np.shares_memory(view.pixels, np.frombuffer(data, np.uint8))
    rgb = view.rgb()
    np.testing.assert_array_equal(rgb, RGB)
    assert rgb.flags.c_contiguous and not np.shares_memory(rgb, np.frombuffer(data, np.uint8))
    np.testing.assert_array_equal(
        view.grey(view.pixels), cv2.cvtColor(RGB, cv2.COLOR_RGB2GRAY)
    )


def test_mono_views_are_rgb_and_compressed_views_keep_opencv_order():
    view = raw_image_view('mono8', 1, 2, 2, False, bytes([9, 200]))
    assert view.order == 'rgb' and view.pixels.tolist() == [[[9] * 3, [200] * 3]]
    ok, png = cv2.imencode('.png', RGB[:, :, ::-1])
    assert ok
    view = compressed_image_view('png', png)
    assert view.order == 'bgr'
    np.testing.assert_array_equal(view.rgb(), RGB)
    assert compressed_image_view('rgb8; png compressed rgb8', png).order == 'rgb'
    with pytest.raises(ImageDecodingError, match='pixel view'):
        PixelView(np.zeros((2, 2, 3), np.uint8), 'yuv')


@pytest.mark.parametrize(
    'args, error, words',
    [
        (('yuv422', 2, 3, 6, False, bytes(12)), UnsupportedEncodingError, 'yuv422'),
        (('rgb8', 2, 3, 8, False, bytes(16)), ImageLayoutError, 'step 8'),
        (('mono16', 2, 3, 5, False, bytes(10)), ImageLayoutError, 'step 5'),
        (('rgb8', 2, 3, 9, False, bytes(17)), ImageLayoutError, 'truncated'),
        (('rgb8', 2, 3, 9, False, bytes(19)), ImageLayoutError, 'too long'),
        (('rgb8', 0, 3, 9, False, b''), ImageLayoutError, 'height'),
        (('rgb8', 2, 0, 9, False, bytes(18)), ImageLayoutError, 'width'),
        (('rgb8', 2, 3, 0, False, bytes(18)), ImageLayoutError, 'step'),
        (('rgb8', 2, 3, 9, False, [0] * 18), ImageDecodingError, 'byte buffer'),
        (('rgb8', 2, 3, 9, False, np.zeros(18, np.float32)), ImageDecodingError, 'uint8'),
    ],
)
def test_bad_raw_inputs_raise_named_errors(args, error, words):
    with pytest.raises(error, match=words):
        decode_raw_image(*args)


def _encode(extension: str, image: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(extension, image)
    assert ok
    return encoded.tobytes()


def test_png_of_bgr_pixels_decodes_to_rgb():
    data = _encode('.png', np.ascontiguousarray(RGB[:, :, ::-1]))
    for format_string in ('png', 'bgr8; png compressed bgr8', 'rgb8; png compressed bgr8'):
        np.testing.assert_array_equal(decode_compressed_image(format_string, data), RGB)


def test_png_compressed_from_rgb_pixels_is_not_swapped():
    data = _encode('.png', RGB)  # the encoder was handed RGB order
    np.testing.assert_array_equal(decode_compressed_image('rgb8; png compressed rgb8', data), RGB)


def test_png_with_alpha_grey_and_16_bit():
    bgra = np.dstack([RGB[:, :, ::-1], np.full((2, 3), 9, np.uint8)])
    np.testing.assert_array_equal(decode_compressed_image('png', _encode('.png', bgra)), RGB)
    grey = np.array([[0, 100, 255], [1, 2, 3]], dtype=np.uint8)
    decoded = decode_compressed_image('mono8; png compressed mono8', _encode('.png', grey))
    np.testing.assert_array_equal(decoded, np.repeat(grey[:, :, None], 3, axis=2))
    decoded = decode_compressed_image('mono16; png compressed mono16', _encode('.png', MONO16))
    np.testing.assert_array_equal(decoded[:, :, 1], MONO16_AS_8)


def test_jpeg_keeps_colours_within_compression_error():
    rgb = np.zeros((16, 16, 3), dtype=np.uint8)
    rgb[:, :8] = (200, 30, 40)  # red-ish left half
    rgb[:, 8:] = (20, 60, 210)  # blue-ish right half
    data = _encode('.jpg', np.ascontiguousarray(rgb[:, :, ::-1]))
    decoded = decode_compressed_image('rgb8; jpeg compressed bgr8', data)
    assert decoded.shape == (16, 16, 3)
    # Away from the colour edge, JPEG reproduces flat colours to a few grey levels.
    np.testing.assert_allclose(decoded[:, :4].astype(int), rgb[:, :4].astype(int), atol=6)
    np.testing.assert_allclose(decoded[:, 12:].astype(int), rgb[:, 12:].astype(int), atol=6)


@pytest.mark.parametrize(
    'format_string, data, error, words',
    [
        ('jpeg', b'', CorruptImageError, 'empty'),
        ('jpeg', b'\xff\xd8\xff not really a jpeg', CorruptImageError, 'cannot decode'),
        ('png', bytes(range(64)), CorruptImageError, 'cannot decode'),
        ('16UC1; compressedDepth png', b'\x00' * 20, UnsupportedEncodingError, 'depth'),
        ('tiff', b'\x00' * 20, UnsupportedEncodingError, 'tiff'),
    ],
)
def test_bad_compressed_inputs_raise_named_errors(format_string, data, error, words):
    with pytest.raises(error, match=words):
        decode_compressed_image(format_string, data)


def test_truncated_png_is_reported_as_corrupt():
    data = _encode('.png', np.ascontiguousarray(RGB[:, :, ::-1]))
    with pytest.raises(CorruptImageError):
        decode_compressed_image('png', data[: len(data) // 2])


@pytest.mark.parametrize(
    'format_string, expected',
    [
        ('jpeg', ('jpeg', False)),
        ('JPEG', ('jpeg', False)),
        ('rgb8; jpeg compressed bgr8', ('jpeg', False)),
        ('rgba8; png compressed rgba8', ('png', True)),
        ('', ('', False)),
    ],
)
def test_format_strings_are_parsed(format_string, expected):
    assert parse_compressed_format(format_string) == expected
