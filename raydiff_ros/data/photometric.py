"""Per-view photometric variation of rendered images (camera-like, numpy + OpenCV).

Applied to each accepted view's RGB after rendering, with parameters drawn from the view set's
generator, so the result stays deterministic per (seed, set index). In order:

1. white balance and exposure: ``x * gain * wb[c]`` (``x`` in [0, 1]);
2. gamma: ``x ** gamma``;
3. Gaussian blur (sometimes), std ``blur_sigma`` pixels;
4. sensor noise: ``x + N(0, read_std^2 + shot * x)`` (Gaussian read noise plus a
   signal-dependent shot term); then clipping to [0, 1] and rounding to uint8.

Labels, cameras and boxes are unchanged: only the pixel values move.
"""

from dataclasses import dataclass

import cv2
import numpy as np

MAX_BYTE = 255.0


def value_range(values) -> tuple[float, float]:
    """A configured ``(low, high)`` range as floats; a reversed range is a ValueError."""
    low, high = (float(v) for v in values)
    if high < low:
        raise ValueError(f'range ({low}, {high}) is reversed')
    return low, high


@dataclass(frozen=True)
class PhotometricConfig:
    """Ranges of the per-view photometric variation (each value uniform in its range)."""

    probability: float = 0.9
    """Probability that a view is altered at all (else it is kept as rendered)."""
    gain: tuple = (0.7, 1.35)
    """Exposure gain on linear [0, 1] intensities."""
    white_balance: tuple = (0.9, 1.1)
    """Independent gain of each RGB channel."""
    gamma: tuple = (0.8, 1.25)
    blur_probability: float = 0.25
    blur_sigma: tuple = (0.4, 1.2)
    """Std of the Gaussian blur in pixels (when a view is blurred)."""
    read_noise_std: tuple = (0.0, 0.02)
    """Std of the additive Gaussian noise, fraction of full scale."""
    shot_noise: tuple = (0.0, 0.004)
    """Shot-noise variance per unit intensity (variance ``shot * x``, full scale 1)."""


@dataclass(frozen=True)
class PhotometricParams:
    """The drawn parameters of one view (see the module docstring); ``identity`` skips all."""

    gain: float = 1.0
    white_balance: tuple = (1.0, 1.0, 1.0)
    gamma: float = 1.0
    blur_sigma: float = 0.0
    read_noise_std: float = 0.0
    shot_noise: float = 0.0
    noise_seed: int = 0

    @property
    def identity(self) -> bool:
        return (self.gain == 1.0 and self.white_balance == (1.0, 1.0, 1.0)
                and self.gamma == 1.0 and self.blur_sigma == 0.0
                and self.read_noise_std == 0.0 and self.shot_noise == 0.0)


def sample_photometric(rng: np.random.Generator, config: PhotometricConfig) -> PhotometricParams:
    """Draw one view's parameters from ``rng`` (always the same number of draws)."""
    apply = rng.uniform() < config.probability
    gain = float(rng.uniform(*value_range(config.gain)))
    wb = tuple(float(v) for v in rng.uniform(*value_range(config.white_balance), 3))
    gamma = float(rng.uniform(*value_range(config.gamma)))
    blur = rng.uniform() < config.blur_probability
    sigma = float(rng.uniform(*value_range(config.blur_sigma)))
    read = float(rng.uniform(*value_range(config.read_noise_std)))
    shot = float(rng.uniform(*value_range(config.shot_noise)))
    noise_seed = int(rng.integers(2**31 - 1))
    if not apply:
        return PhotometricParams()
    return PhotometricParams(gain=gain, white_balance=wb, gamma=gamma,
                             blur_sigma=sigma if blur else 0.0, read_noise_std=read,
                             shot_noise=shot, noise_seed=noise_seed)


def apply_photometric(image: np.ndarray, params: PhotometricParams) -> np.ndarray:
    """The image (H, W, 3) uint8 after the photometric changes of ``params`` (new array)."""
    if params.identity:
        return image.copy()
    x = image.astype(np.float32) * np.float32(1 / MAX_BYTE)
    x *= np.asarray(params.white_balance, dtype=np.float32) * np.float32(params.gain)
    np.clip(x, 0.0, 1.0, out=x)
    if params.gamma != 1.0:
        np.power(x, np.float32(params.gamma), out=x)
    if params.blur_sigma > 0:
        x = cv2.GaussianBlur(x, (0, 0), sigmaX=params.blur_sigma,
                             borderType=cv2.BORDER_REFLECT)
    if params.read_noise_std > 0 or params.shot_noise > 0:
        noise = np.random.default_rng(params.noise_seed).standard_normal(
            x.shape, dtype=np.float32)
        std = np.sqrt(np.float32(params.read_noise_std ** 2) + np.float32(params.shot_noise) * x)
        x += noise * std
    return np.clip(x * np.float32(MAX_BYTE) + np.float32(0.5), 0, MAX_BYTE).astype(np.uint8)
