"""The network's image input: a crop of an image, resized and normalised as the model expects.

Shared by inference (:mod:`raydiff_ros.inference.preprocess`), the training data and the
feature cache, so that training and inference see the same pixels. Values are scaled to
[-1, 1] (``(x / 255 - 0.5) / 0.5``, the official normalisation, not ImageNet's).
"""

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

INPUT_SIZE = 224
"""Side of the square network input, pixels (16 x 16 patches of 14 pixels)."""
PIXEL_MEAN = 0.5
PIXEL_STD = 0.5
UINT8_MAX = 255.0


def crop_and_resize(image: np.ndarray, box: Sequence[int], size: int) -> torch.Tensor:
    """Cut ``box`` (x0, y0, x1, y1, may leave the image: black there) and resize to size^2.

    Returns (3, size, size) float32 in [-1, 1].
    """
    x0, y0, x1, y1 = (int(v) for v in box)
    height, width = image.shape[:2]
    canvas = np.zeros((y1 - y0, x1 - x0, 3), dtype=np.uint8)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if sx1 > sx0 and sy1 > sy0:
        canvas[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = image[sy0:sy1, sx0:sx1]
    tensor = torch.from_numpy(canvas).permute(2, 0, 1).float().div_(UINT8_MAX)
    resized = F.interpolate(tensor[None], size=(size, size), mode='bilinear',
                            align_corners=False, antialias=True)[0]
    return resized.sub_(PIXEL_MEAN).div_(PIXEL_STD)
