"""Image preprocessing for the ray-diffusion model: square crops, resize, crop parameters.

Each image (H, W, 3) uint8 RGB of any size is cut to a square crop box (pixels outside the
image are black), resized to the model's input size with antialiased bilinear interpolation, and
scaled to [-1, 1] (``(x / 255 - 0.5) / 0.5``, the official normalisation, not ImageNet's). The
crop enters the network only through its crop parameters and the NDC patch grid
(:mod:`raydiff_ros.geometry.crop`).

Crop boxes: with a bounding box of the object of interest, the official demo's square box
(side = longer bbox side x ``bbox_scale``, centred on the bbox); without one (the usual robot
case), a square centred on the image whose side is the longer image side x ``image_scale``, so
the whole image is seen.
"""

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch

from raydiff_ros.estimation.contract import MIN_VIEWS, EstimationError
from raydiff_ros.geometry.crop import (
    DEMO_CROP_SCALE,
    crop_parameters,
    crop_parameters_demo,
    ndc_grid,
    square_crop_box,
)
from raydiff_ros.model.image_input import INPUT_SIZE, crop_and_resize

CROP_PARAMETER_FORMULAS = ('train', 'demo')


class ImageInputError(ValueError):
    """An input image (or its bounding box) is unusable."""


@dataclass(frozen=True)
class CropConfig:
    """How images are cropped before the network.

    image_scale: side of the full-image square crop relative to the longer image side.
    bbox_scale: side of a bbox crop relative to the longer bbox side (official demo: 1.15).
    crop_parameters: 'train' (the training formula: geometrically correct, the default) or
        'demo' (the official demo's formula with its two quirks, for numerical parity only).
    input_size: network input side in pixels.
    """

    image_scale: float = 1.0
    bbox_scale: float = DEMO_CROP_SCALE
    crop_parameters: str = 'train'
    input_size: int = INPUT_SIZE

    def __post_init__(self) -> None:
        if not (self.image_scale > 0 and self.bbox_scale > 0):
            raise ValueError('crop scales must be positive')
        if self.crop_parameters not in CROP_PARAMETER_FORMULAS:
            raise ValueError(f'crop_parameters must be one of {CROP_PARAMETER_FORMULAS}, got '
                             f'{self.crop_parameters!r}')
        if self.input_size <= 0:
            raise ValueError('input_size must be positive')


@dataclass
class PreprocessedViews:
    """Network inputs of one view set.

    images: (N, 3, S, S) float32 in [-1, 1], S = input size.
    crop_boxes: (N, 4) int64 square crop boxes (x0, y0, x1, y1) in original pixels.
    crop_params: (N, 4) crop parameters (``raydiff_ros.geometry.crop`` convention).
    ndc: (N, 2, P, P) NDC patch centres (x', y') of the crops.
    image_sizes: (N, 2) original (W, H) in pixels.
    """

    images: torch.Tensor
    crop_boxes: torch.Tensor
    crop_params: torch.Tensor
    ndc: torch.Tensor
    image_sizes: torch.Tensor


def _check_image(image: np.ndarray, index: int) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ImageInputError(f'image {index} must be (H, W, 3) RGB, got shape {image.shape}')
    if image.dtype != np.uint8:
        raise ImageInputError(f'image {index} must be uint8, got {image.dtype}')
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ImageInputError(f'image {index} is empty')
    return image


def full_image_crop_box(width: int, height: int, scale: float) -> np.ndarray:
    """Square box (x0, y0, x1, y1) centred on the image, side = round(max(W, H) * scale)."""
    side = int(round(max(width, height) * scale))
    x0 = int(round((width - side) / 2.0))
    y0 = int(round((height - side) / 2.0))
    return np.array([x0, y0, x0 + side, y0 + side], dtype=np.int64)


def preprocess_views(images: Sequence[np.ndarray], config: CropConfig = CropConfig(),
                     bboxes: Optional[np.ndarray] = None,
                     num_patches: int = 16) -> PreprocessedViews:
    """Crop, resize and normalise a view set; compute crop parameters and the NDC grid.

    Args:
        images: N images (H_i, W_i, 3) uint8 RGB.
        config: :class:`CropConfig`.
        bboxes: optional (N, 4) object boxes (x0, y0, x1, y1) in pixels (exclusive max).
        num_patches: P, patches per side of the model's ray grid.
    """
    checked = [_check_image(image, i) for i, image in enumerate(images)]
    sizes = np.array([[im.shape[1], im.shape[0]] for im in checked], dtype=np.int64)
    if bboxes is None:
        boxes = np.stack([full_image_crop_box(w, h, config.image_scale) for w, h in sizes])
        source_boxes = boxes
    else:
        source_boxes = np.asarray(bboxes, dtype=np.float64)
        if source_boxes.shape != (len(checked), 4) or not np.all(np.isfinite(source_boxes)):
            raise ImageInputError(f'bboxes must be finite ({len(checked)}, 4), got '
                                  f'{source_boxes.shape}')
        if np.any(source_boxes[:, 2:] <= source_boxes[:, :2]):
            raise ImageInputError('every bbox needs x1 > x0 and y1 > y0')
        boxes = square_crop_box(source_boxes, scale=config.bbox_scale).numpy()
    size_tensor = torch.from_numpy(sizes).double()
    box_tensor = torch.from_numpy(boxes).double()
    if config.crop_parameters == 'demo':
        params = crop_parameters_demo(box_tensor, torch.from_numpy(
            np.asarray(source_boxes, dtype=np.float64)), size_tensor)
    else:
        params = crop_parameters(box_tensor, size_tensor)
    params = params.float()
    ndc = ndc_grid(params, num_patches=num_patches).permute(0, 3, 1, 2).contiguous()
    pixels = torch.stack([crop_and_resize(im, box, config.input_size)
                          for im, box in zip(checked, boxes, strict=True)])
    return PreprocessedViews(images=pixels, crop_boxes=torch.from_numpy(boxes),
                             crop_params=params, ndc=ndc.float(), image_sizes=size_tensor)


def check_view_count(num_views: int, max_views: int) -> None:
    """EstimationError when a view set has more than ``max_views`` views (estimators' check;
    ``ViewSetInput`` already enforces at least ``MIN_VIEWS``)."""
    if num_views > max_views:
        raise EstimationError(f'a view set needs {MIN_VIEWS} to {max_views} images, got '
                              f'{num_views}')


def preprocess_view_set(images: Sequence[np.ndarray], config: CropConfig,
                        bboxes: Optional[np.ndarray], num_patches: int) -> PreprocessedViews:
    """:func:`preprocess_views` for an estimator: bad images or boxes raise EstimationError."""
    try:
        return preprocess_views(images, config, bboxes, num_patches)
    except ValueError as error:  # ImageInputError included
        raise EstimationError(str(error)) from error
