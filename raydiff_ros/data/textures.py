"""Procedural textures drawn with numpy (deterministic for a given random generator).

Every function takes a ``numpy.random.Generator`` and a side length and returns a square RGB
image (S, S, 3) uint8. :func:`random_texture` picks one of the kinds at random. The renderer
writes textures to PNG files, which pybullet loads.
"""

from typing import Callable

import cv2
import numpy as np

UINT8_MAX = 255
CHECKER_CELLS = (2, 16)
"""Range of checker cells per side (inclusive)."""
STRIPE_PERIOD = (4.0, 40.0)
"""Range of stripe periods in pixels (of a 128-pixel texture; scaled with the size)."""
NOISE_OCTAVES = (1, 4)
NOISE_BASE_CELLS = (2, 8)
DOT_SPACING = (8, 32)
CELL_SEEDS = (6, 40)
MARBLE_FREQUENCY = (2.0, 10.0)
MARBLE_TURBULENCE = (1.0, 6.0)
REFERENCE_SIZE = 128
PALETTE_SIZE = (2, 4)
SATURATION = (0.1, 1.0)
VALUE = (0.15, 1.0)
HUE_SCALE, CHANNEL_SCALE = 179, 255
"""OpenCV's 8-bit HSV ranges: hue 0..179, saturation and value 0..255."""
DOT_RADIUS = (0.2, 0.45)
"""Dot radius, fraction of the dot spacing."""
DOT_JITTER = 0.2
"""Dot centre jitter, fraction of the dot spacing."""
CELL_BORDER_SHADE = 0.4
"""Brightness factor on Voronoi cell borders (1 inside the cells)."""
CELL_BORDER_WIDTH = 2.0
"""Pixels over which a cell border fades in."""
GRADIENT_NOISE_STD = 0.03


def random_colors(rng: np.random.Generator, count: int) -> np.ndarray:
    """``count`` random RGB colours (count, 3) float in [0, 1], spread in hue and value."""
    hue = rng.uniform(0.0, 1.0, count)
    saturation = rng.uniform(*SATURATION, count)
    value = rng.uniform(*VALUE, count)
    hsv = np.stack([hue * HUE_SCALE, saturation * CHANNEL_SCALE, value * CHANNEL_SCALE],
                   axis=-1).astype(np.uint8)
    rgb = cv2.cvtColor(hsv[None], cv2.COLOR_HSV2RGB)[0]
    return rgb.astype(np.float64) / UINT8_MAX


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.round(image * UINT8_MAX), 0, UINT8_MAX).astype(np.uint8)


def _palette_map(rng: np.random.Generator, field: np.ndarray) -> np.ndarray:
    """Map a scalar field (S, S) in [0, 1] through a random piecewise-linear colour ramp."""
    count = int(rng.integers(PALETTE_SIZE[0], PALETTE_SIZE[1] + 1))
    colors = random_colors(rng, count)
    stops = np.linspace(0.0, 1.0, count)
    channels = [np.interp(field, stops, colors[:, c]) for c in range(3)]
    return np.stack(channels, axis=-1)


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    coords = np.arange(size, dtype=np.float64) + 0.5
    return np.meshgrid(coords, coords, indexing='xy')


def checker_texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """Checkerboard of two random colours."""
    cells = int(rng.integers(CHECKER_CELLS[0], CHECKER_CELLS[1] + 1))
    x, y = _grid(size)
    parity = (np.floor(x * cells / size) + np.floor(y * cells / size)) % 2
    colors = random_colors(rng, 2)
    return _to_uint8(colors[parity.astype(int)])


def stripe_texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """Parallel stripes at a random angle and period, soft edges, 2-4 colours."""
    angle = rng.uniform(0, np.pi)
    period = rng.uniform(*STRIPE_PERIOD) * size / REFERENCE_SIZE
    x, y = _grid(size)
    phase = (x * np.cos(angle) + y * np.sin(angle)) / period
    field = 0.5 + 0.5 * np.sin(2 * np.pi * phase)
    return _to_uint8(_palette_map(rng, field))


def value_noise(rng: np.random.Generator, size: int) -> np.ndarray:
    """Smooth multi-octave value noise (S, S) in [0, 1]."""
    octaves = int(rng.integers(NOISE_OCTAVES[0], NOISE_OCTAVES[1] + 1))
    cells = int(rng.integers(NOISE_BASE_CELLS[0], NOISE_BASE_CELLS[1] + 1))
    field = np.zeros((size, size))
    amplitude, total = 1.0, 0.0
    for _ in range(octaves):
        coarse = rng.uniform(0.0, 1.0, (cells + 1, cells + 1)).astype(np.float32)
        field += amplitude * cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
        total += amplitude
        amplitude *= 0.5
        cells *= 2
    field /= total
    low, high = field.min(), field.max()
    return (field - low) / (high - low) if high > low else np.zeros_like(field)


def noise_texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """Value noise through a random colour ramp."""
    return _to_uint8(_palette_map(rng, value_noise(rng, size)))


def marble_texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """Sine bands distorted by value noise (marble / wood grain)."""
    frequency = rng.uniform(*MARBLE_FREQUENCY)
    turbulence = rng.uniform(*MARBLE_TURBULENCE)
    angle = rng.uniform(0, np.pi)
    x, y = _grid(size)
    base = (x * np.cos(angle) + y * np.sin(angle)) / size
    distortion = turbulence * value_noise(rng, size)
    field = 0.5 + 0.5 * np.sin(2 * np.pi * (frequency * base + distortion))
    return _to_uint8(_palette_map(rng, field))


def dot_texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """Jittered polka dots on a background colour."""
    spacing = int(rng.integers(DOT_SPACING[0], DOT_SPACING[1] + 1)) * size / REFERENCE_SIZE
    radius = rng.uniform(*DOT_RADIUS) * spacing
    colors = random_colors(rng, 2)
    x, y = _grid(size)
    cell_x, cell_y = np.floor(x / spacing), np.floor(y / spacing)
    count = int(np.ceil(size / spacing)) + 1
    jitter = rng.uniform(-DOT_JITTER, DOT_JITTER, (count, count, 2)) * spacing
    centre_x = (cell_x + 0.5) * spacing + jitter[cell_y.astype(int), cell_x.astype(int), 0]
    centre_y = (cell_y + 0.5) * spacing + jitter[cell_y.astype(int), cell_x.astype(int), 1]
    inside = (x - centre_x) ** 2 + (y - centre_y) ** 2 < radius**2
    return _to_uint8(np.where(inside[..., None], colors[1], colors[0]))


def cell_texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """Voronoi cells with random colours and darkened borders."""
    count = int(rng.integers(CELL_SEEDS[0], CELL_SEEDS[1] + 1))
    seeds = rng.uniform(0, size, (count, 2))
    colors = random_colors(rng, count)
    x, y = _grid(size)
    distances = (x[..., None] - seeds[:, 0]) ** 2 + (y[..., None] - seeds[:, 1]) ** 2
    order = np.argsort(distances, axis=-1)
    nearest = order[..., 0]
    first = np.take_along_axis(distances, order[..., :1], -1)[..., 0]
    second = np.take_along_axis(distances, order[..., 1:2], -1)[..., 0]
    border = np.clip((np.sqrt(second) - np.sqrt(first)) / CELL_BORDER_WIDTH, 0.0, 1.0)
    shade = CELL_BORDER_SHADE + (1 - CELL_BORDER_SHADE) * border
    return _to_uint8(colors[nearest] * shade[..., None])


def gradient_texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """A linear gradient between random colours with a little noise."""
    angle = rng.uniform(0, 2 * np.pi)
    x, y = _grid(size)
    field = (x * np.cos(angle) + y * np.sin(angle)) / size
    field = (field - field.min()) / max(np.ptp(field), 1e-9)
    image = _palette_map(rng, field) + rng.normal(0, GRADIENT_NOISE_STD, (size, size, 1))
    return _to_uint8(image)


TEXTURE_KINDS: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    'checker': checker_texture,
    'stripes': stripe_texture,
    'noise': noise_texture,
    'marble': marble_texture,
    'dots': dot_texture,
    'cells': cell_texture,
    'gradient': gradient_texture,
}


def procedural_texture(kind: str, seed: int, size: int) -> np.ndarray:
    """Texture of ``kind`` (a key of ``TEXTURE_KINDS``) drawn from ``seed``: (S, S, 3) uint8."""
    if kind not in TEXTURE_KINDS:
        raise ValueError(f'unknown texture kind {kind!r}; known: {sorted(TEXTURE_KINDS)}')
    if size < 2:
        raise ValueError(f'texture size must be at least 2, got {size}')
    return TEXTURE_KINDS[kind](np.random.default_rng(seed), size)


PHOTO_CROP = (0.2, 1.0)
"""Side of the square crop of a photo texture, fraction of the source's shorter side."""
PHOTO_GAIN = (0.6, 1.3)
"""Brightness factor of a photo texture."""
PHOTO_CHANNEL_GAIN = (0.8, 1.2)
"""Independent factor of each RGB channel of a photo texture."""
PHOTO_SATURATION = (0.4, 1.3)
"""Saturation factor of a photo texture (1 keeps the colours, 0 is grey)."""
PHOTO_GRAYSCALE_PROBABILITY = 0.1


def photo_texture(source: np.ndarray, seed: int, size: int) -> np.ndarray:
    """A square texture (S, S, 3) uint8 cut from a photograph (H, W, 3) uint8.

    A random square crop (``PHOTO_CROP`` of the shorter side) at a random rotation (any angle;
    the crop stays inside the rotated image), a random mirror, resized to ``size``, then colour
    jitter: brightness, per-channel gain, saturation, sometimes grey. Deterministic per seed.
    """
    if size < 2:
        raise ValueError(f'texture size must be at least 2, got {size}')
    source = np.asarray(source)
    if source.ndim != 3 or source.shape[2] != 3 or source.dtype != np.uint8:
        raise ValueError(f'source must be (H, W, 3) uint8, got {source.shape} {source.dtype}')
    rng = np.random.default_rng(seed)
    height, width = source.shape[:2]
    side = min(height, width) * rng.uniform(*PHOTO_CROP)
    angle = rng.uniform(0, 360)
    # the rotated square must fit: its half-diagonal extent along x and y
    theta = np.radians(angle)
    reach = side / 2 * (abs(np.cos(theta)) + abs(np.sin(theta)))
    reach = min(reach, width / 2, height / 2)
    side = min(side, 2 * reach / (abs(np.cos(theta)) + abs(np.sin(theta))))
    cx = rng.uniform(reach, width - reach)
    cy = rng.uniform(reach, height - reach)
    scale = size / side
    matrix = cv2.getRotationMatrix2D((float(cx), float(cy)), float(angle), float(scale))
    matrix[:, 2] += np.array([size / 2 - cx, size / 2 - cy])
    crop = cv2.warpAffine(source, matrix, (size, size), flags=cv2.INTER_AREA if scale < 1
                          else cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    if rng.uniform() < 0.5:
        crop = crop[:, ::-1]
    image = crop.astype(np.float32)
    grey = image.mean(axis=2, keepdims=True)
    saturation = 0.0 if rng.uniform() < PHOTO_GRAYSCALE_PROBABILITY \
        else rng.uniform(*PHOTO_SATURATION)
    image = grey + (image - grey) * np.float32(saturation)
    image *= np.float32(rng.uniform(*PHOTO_GAIN)) * rng.uniform(*PHOTO_CHANNEL_GAIN, 3
                                                               ).astype(np.float32)
    return _to_uint8(image / UINT8_MAX)
