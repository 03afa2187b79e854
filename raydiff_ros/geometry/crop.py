"""Square object crops, RayDiffusion crop parameters, and the patch grid of a crop.

Crop box: ``[x0, y0, x1, y1]`` in pixels of the original image (exclusive max, may extend past
the image; the cropper pads with black). Crop parameters (the network's view of the crop) are
the 4-vector ``(-cc_x, -cc_y, crop_width, s)`` in PyTorch3D NDC units: ``(cc_x, cc_y)`` is the
NDC position of the crop centre (+X left, +Y up, shorter image side spanning [-1, 1]),
``crop_width`` the crop side in NDC units and ``s = max(W, H) / min(W, H)`` (unused by the grid).

Patch grid: ``P x P`` patch centres of the crop (DINOv2 patch order), rows top -> bottom,
columns left -> right; the flat index is ``p = P * i + j`` (row ``i``, column ``j``).
"""

from typing import Optional

import torch

from raydiff_ros.geometry import conventions
from raydiff_ros.geometry.checks import (
    ArrayLike,
    GeometryInputError,
    as_float_tensor,
    require_finite,
    require_positive,
    require_trailing_shape,
)
from raydiff_ros.geometry.conventions import ImageSize

DEMO_CROP_SCALE = 1.15
"""Side of the square crop relative to the longer bbox side (official demo's fixed jitter)."""

DEFAULT_NUM_PATCHES = 16
"""Patches per crop side: 224-pixel crops with 14-pixel DINOv2 patches."""

FULL_IMAGE_CROP_WIDTH = 2.0
"""NDC crop width of 'no crop': the grid spans the centred square [-1, 1]^2."""


def _require_box(box: torch.Tensor, name: str) -> None:
    require_trailing_shape(box, name, (4,))
    require_finite(box, name)
    if not bool(((box[..., 2] > box[..., 0]) & (box[..., 3] > box[..., 1])).all()):
        raise GeometryInputError(f'{name} must satisfy x1 > x0 and y1 > y0 ([x0, y0, x1, y1])')


def _require_crop_parameters(crop_params: torch.Tensor) -> None:
    require_trailing_shape(crop_params, 'crop_params', (4,))
    require_finite(crop_params, 'crop_params')
    require_positive(crop_params[..., 2], 'crop_params crop_width (index 2)')


def _output_dtype(*tensors: torch.Tensor) -> torch.dtype:
    floating = [tensor.dtype for tensor in tensors if tensor.is_floating_point()]
    return floating[0] if floating else torch.get_default_dtype()


def square_crop_box(bbox: ArrayLike, scale: float = DEMO_CROP_SCALE) -> torch.Tensor:
    """Square integer crop box around a bounding box, as the official demo cuts it.

    The square is centred on the bbox centre with side ``side = max(x1 - x0, y1 - y0)``, scaled
    by ``scale``: ``ul = round(centre - side * scale / 2)``, ``lr = ul + round(side * scale)``
    (round half to even, computed in float64).

    Args:
        bbox: (..., 4) ``[x0, y0, x1, y1]`` pixels, exclusive max.
        scale: crop side / longer bbox side, > 0.

    Returns:
        (..., 4) int64 crop box ``[x0, y0, x1, y1]`` (may extend beyond the image).
    """
    box = as_float_tensor(bbox, 'bbox').to(torch.float64)
    _require_box(box, 'bbox')
    if not scale > 0:
        raise GeometryInputError(f'scale must be positive, got {scale}')
    centre = (box[..., :2] + box[..., 2:]) / 2
    side = (box[..., 2:] - box[..., :2]).max(dim=-1, keepdim=True).values
    upper_left = torch.round(centre - side * scale / 2)
    lower_right = upper_left + torch.round(side * scale)
    return torch.cat([upper_left, lower_right], dim=-1).to(torch.int64)


def crop_parameters(crop_box: ArrayLike, image_size: ImageSize) -> torch.Tensor:
    """Crop parameters by the training formula (official CO3D loader; the correct geometry).

    With ``m = min(W, H)``, crop centre ``c`` and side ``side`` (pixels):
    ``[-(W - 2 c_x) / m, -(H - 2 c_y) / m, 2 side / m, max(W, H) / m]``.

    Args:
        crop_box: (..., 4) ``[x0, y0, x1, y1]`` pixels; square (the width is used as the side).
        image_size: ``(W, H)`` or (..., 2).

    Returns:
        (..., 4) crop parameters (float64 arithmetic, returned in the input's floating dtype or
        the default dtype for integer input).
    """
    box_in = as_float_tensor(crop_box, 'crop_box')
    dtype = _output_dtype(crop_box if isinstance(crop_box, torch.Tensor) else box_in)
    box = box_in.to(torch.float64)
    _require_box(box, 'crop_box')
    box, size = _broadcast_box_and_size(box, conventions.image_size_tensor(image_size, box))
    short_side = size.min(dim=-1, keepdim=True).values
    centre = (box[..., :2] + box[..., 2:]) / 2
    negated_centre = -(size - 2 * centre) / short_side
    width = 2 * (box[..., 2:3] - box[..., 0:1]) / short_side
    aspect = size.max(dim=-1, keepdim=True).values / short_side
    return torch.cat([negated_centre, width, aspect], dim=-1).to(dtype)


def crop_parameters_demo(
    crop_box: ArrayLike, bbox: ArrayLike, image_size: ImageSize
) -> torch.Tensor:
    """Crop parameters by the official DEMO formula, with both of its quirks (parity only).

    ``cc = s - 2 s c / L`` per axis and ``crop_width = 2 s (bbox_x1 - bbox_x0) / L``
    (``L = max(W, H)``, ``s = L / min(W, H)``, ``c`` the crop-box centre), returned as
    ``[-cc_x, -cc_y, crop_width, s]``. Quirk 1: no shift into a centred L x L square, so on the
    shorter image axis the centre is off by ``s - 1`` NDC. Quirk 2: ``crop_width`` uses the
    ORIGINAL bbox width, not the side of the crop actually cut out. Use
    :func:`crop_parameters` for geometry that matches the image content.

    Args:
        crop_box: (..., 4) crop box actually cut out (pixels).
        bbox: (..., 4) the object bounding box the crop was made from (pixels).
        image_size: ``(W, H)`` or (..., 2).

    Returns:
        (..., 4) crop parameters, in the crop box's floating dtype (default dtype for integers).
    """
    box_in = as_float_tensor(crop_box, 'crop_box')
    dtype = _output_dtype(crop_box if isinstance(crop_box, torch.Tensor) else box_in)
    box = box_in.to(torch.float64)
    _require_box(box, 'crop_box')
    object_box = as_float_tensor(bbox, 'bbox').to(torch.float64)
    _require_box(object_box, 'bbox')
    try:
        box, object_box = torch.broadcast_tensors(box, object_box)
    except RuntimeError as error:
        raise GeometryInputError(
            f'crop_box {tuple(box.shape)} and bbox {tuple(object_box.shape)} do not broadcast'
        ) from error
    box, size = _broadcast_box_and_size(box, conventions.image_size_tensor(image_size, box))
    object_box = object_box.expand(box.shape)
    long_side = size.max(dim=-1, keepdim=True).values
    aspect = long_side / size.min(dim=-1, keepdim=True).values
    centre = (box[..., :2] + box[..., 2:]) / 2
    negated_centre = -(aspect - 2 * aspect * centre / long_side)
    width = 2 * aspect * (object_box[..., 2:3] - object_box[..., 0:1]) / long_side
    return torch.cat([negated_centre, width, aspect], dim=-1).to(dtype)


def _broadcast_box_and_size(
    box: torch.Tensor, size: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Expand a box (..., 4) and an image size (..., 2) to one batch shape."""
    try:
        batch = torch.broadcast_shapes(box.shape[:-1], size.shape[:-1])
    except RuntimeError as error:
        raise GeometryInputError(
            f'box {tuple(box.shape)} and image_size {tuple(size.shape)} do not broadcast'
        ) from error
    return box.expand(batch + (4,)), size.expand(batch + (2,))


def crop_box_from_parameters(crop_params: ArrayLike, image_size: ImageSize) -> torch.Tensor:
    """Inverse of :func:`crop_parameters` (training formula): the pixel crop box.

    Args:
        crop_params: (..., 4) crop parameters (training formula).
        image_size: ``(W, H)`` or (..., 2).

    Returns:
        (..., 4) float crop box ``[x0, y0, x1, y1]`` in pixels.
    """
    params = as_float_tensor(crop_params, 'crop_params')
    _require_crop_parameters(params)
    size = conventions.image_size_tensor(image_size, params)
    half = size.min(dim=-1, keepdim=True).values / 2
    centre = size / 2 + params[..., :2] * half
    side = params[..., 2:3] * half
    return torch.cat([centre - side / 2, centre + side / 2], dim=-1)


def ndc_grid(
    crop_params: Optional[ArrayLike] = None,
    num_patches: int = DEFAULT_NUM_PATCHES,
    flatten: bool = False,
    device: Optional[torch.device] = None,
    dtype: Optional[torch.dtype] = None,
) -> torch.Tensor:
    """NDC coordinates of the patch centres of a crop (the model's 'ndc' input channels).

    Patch-centre offsets ``u_j = (1 - 1/P) - 2 j / P`` (0.9375 ... -0.9375 for P = 16) for column
    ``j`` (left -> right, +X is left) and ``v_i`` likewise for row ``i`` (top -> bottom); then
    ``x' = u_j * crop_width / 2 - crop_params[0]``, ``y' = v_i * crop_width / 2 - crop_params[1]``.

    Args:
        crop_params: (..., 4) crop parameters, or None for the full centred square [-1, 1]^2.
        num_patches: P, patches per side.
        flatten: return (..., P*P, 2) with index ``p = P i + j`` instead of (..., P, P, 2).
        device, dtype: of the result when ``crop_params`` is None (default: CPU, default dtype);
            otherwise the result follows ``crop_params``.

    Returns:
        (..., P, P, 2) (or (..., P*P, 2)) ``(x', y')`` in NDC; [..., i, j, :] is row i, column j.
    """
    if not isinstance(num_patches, int) or num_patches < 1:
        raise GeometryInputError(f'num_patches must be a positive integer, got {num_patches}')
    if crop_params is None:
        params = torch.tensor([0.0, 0.0, FULL_IMAGE_CROP_WIDTH, 1.0], device=device, dtype=dtype)
    else:
        params = as_float_tensor(crop_params, 'crop_params')
        _require_crop_parameters(params)
    index = torch.arange(num_patches, device=params.device, dtype=params.dtype)
    offsets = (1 - 1 / num_patches) - 2 * index / num_patches
    half_width = params[..., 2, None] / 2
    x = offsets * half_width - params[..., 0, None]  # (..., P) over columns j
    y = offsets * half_width - params[..., 1, None]  # (..., P) over rows i
    grid_shape = params.shape[:-1] + (num_patches, num_patches)
    grid = torch.stack(
        [x[..., None, :].expand(grid_shape), y[..., :, None].expand(grid_shape)], dim=-1
    )
    if flatten:
        return grid.reshape(params.shape[:-1] + (num_patches * num_patches, 2))
    return grid


def pixel_grid(
    crop_params: Optional[ArrayLike],
    image_size: ImageSize,
    num_patches: int = DEFAULT_NUM_PATCHES,
    flatten: bool = False,
) -> torch.Tensor:
    """The patch grid of :func:`ndc_grid` as pixel coordinates of the original image.

    OpenCV-convention code can unproject these with ``K`` directly.

    Args:
        crop_params: (..., 4) crop parameters, or None (full centred square).
        image_size: ``(W, H)`` or (..., 2), broadcastable against crop_params' batch shape.
        num_patches: P.
        flatten: return (..., P*P, 2) instead of (..., P, P, 2).

    Returns:
        (..., P, P, 2) (or (..., P*P, 2)) pixel coordinates ``(u, v)``.
    """
    if crop_params is None and isinstance(image_size, torch.Tensor):
        dtype = image_size.dtype if image_size.is_floating_point() else None
        grid = ndc_grid(None, num_patches, flatten, device=image_size.device, dtype=dtype)
    else:
        grid = ndc_grid(crop_params, num_patches, flatten)
    size = conventions.image_size_tensor(image_size, grid)
    spatial_dims = 1 if flatten else 2
    size = size.reshape(size.shape[:-1] + (1,) * spatial_dims + (2,))
    return conventions.ndc_to_pixel(grid, size)
