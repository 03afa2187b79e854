"""Input checks shared by the geometry modules: tensor coercion, shapes, finiteness.

Every public geometry function funnels its array inputs through these helpers, so bad input
fails early with an error that names the argument and the problem.
"""

from typing import Optional, Sequence, Union

import numpy as np
import torch

ArrayLike = Union[torch.Tensor, np.ndarray, Sequence[float], float]


class GeometryInputError(ValueError):
    """An argument has the wrong shape, a non-finite value, or a value out of its domain."""


class DegenerateGeometryError(GeometryInputError):
    """The input is well formed but the geometric problem has no unique solution.

    Examples: (near) parallel rays have no unique intersection; a singular homography has no
    rotation/intrinsics factorisation.
    """


def as_float_tensor(
    value: ArrayLike,
    name: str,
    like: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Convert ``value`` to a floating-point tensor.

    Args:
        value: a tensor, numpy array, sequence or scalar.
        name: the argument name used in error messages.
        like: if given, the result takes its device and dtype; otherwise a floating tensor keeps
            its dtype (numpy float64 stays float64) and an integer one becomes the torch default.

    Returns:
        The tensor (no copy when nothing changes).
    """
    if isinstance(value, torch.Tensor):
        tensor = value
    else:
        try:
            tensor = torch.as_tensor(np.asarray(value))
        except (TypeError, ValueError) as error:
            raise TypeError(f'{name} must be array-like, got {type(value).__name__}') from error
    if tensor.dtype == torch.bool or tensor.is_complex():
        raise TypeError(f'{name} must be real-valued, got dtype {tensor.dtype}')
    if like is not None:
        return tensor.to(device=like.device, dtype=like.dtype)
    if not tensor.is_floating_point():
        tensor = tensor.to(torch.get_default_dtype())
    return tensor


def require_trailing_shape(tensor: torch.Tensor, name: str, trailing: Sequence[int]) -> None:
    """Raise unless ``tensor.shape`` ends with ``trailing`` (any leading batch dimensions)."""
    trailing = tuple(trailing)
    if tensor.dim() < len(trailing) or tuple(tensor.shape[tensor.dim() - len(trailing):]) != (
        trailing
    ):
        wanted = ', '.join(['...'] + [str(size) for size in trailing])
        raise GeometryInputError(
            f'{name} must have shape ({wanted}), got {tuple(tensor.shape)}'
        )


def require_finite(tensor: torch.Tensor, name: str) -> None:
    """Raise if ``tensor`` holds a NaN or an infinity."""
    if not bool(torch.isfinite(tensor).all()):
        raise GeometryInputError(f'{name} contains non-finite values (NaN or inf)')


def require_positive(tensor: torch.Tensor, name: str) -> None:
    """Raise unless every entry of ``tensor`` is finite and strictly positive."""
    require_finite(tensor, name)
    if not bool((tensor > 0).all()):
        raise GeometryInputError(
            f'{name} must be strictly positive, got minimum {float(tensor.min()):.6g}'
        )
