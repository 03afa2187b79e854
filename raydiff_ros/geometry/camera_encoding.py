"""Camera parameters as flat vectors: rotation parameterisations and the pose-diffusion encoding.

Rotations (torch, batched over any leading dimensions):

* ``6d`` (Zhou et al., CVPR 2019): the first two columns of R, ``(..., 6)`` =
  ``[R[:, 0], R[:, 1]]``; decoded by Gram-Schmidt (any vector pair in general position maps to
  a proper rotation, continuously);
* ``quaternion``: unit quaternion ``(x, y, z, w)`` (ROS / scipy order), canonicalised to
  ``w >= 0``; decoded after normalisation (any non-zero vector maps to a rotation).

Camera encoding (:func:`encode_cameras`): one vector per camera,
``[t (3), rotation (6 or 4), log focal (1)]`` with ``R``, ``t`` world-to-camera
(``camera_T_world``, OpenCV optical axes) and the focal length in NDC units of the network's
square crop, ``f_ndc = 2 f_px / crop_side_px`` (its log: a scale-free quantity that does not
depend on the image size).
"""

from typing import Tuple

import torch

ROTATION_PARAMETERISATIONS = {'6d': 6, 'quaternion': 4}
"""Rotation parameterisation -> number of parameters."""
TRANSLATION_DIM = 3
FOCAL_DIM = 1
NORM_EPS = 1e-8


def rotation_dim(parameterisation: str) -> int:
    """Parameters of a rotation parameterisation (6 or 4)."""
    try:
        return ROTATION_PARAMETERISATIONS[parameterisation]
    except KeyError:
        choices = tuple(ROTATION_PARAMETERISATIONS)
        raise ValueError(f'rotation parameterisation must be one of {choices}, got '
                         f'{parameterisation!r}') from None


def camera_encoding_dim(parameterisation: str) -> int:
    """Length of one camera's encoding: translation, rotation, log focal."""
    return TRANSLATION_DIM + rotation_dim(parameterisation) + FOCAL_DIM


def matrix_to_rotation_6d(R: torch.Tensor) -> torch.Tensor:
    """Rotations (..., 3, 3) -> (..., 6): the first two columns, concatenated."""
    _require_matrices(R)
    return torch.cat([R[..., :, 0], R[..., :, 1]], dim=-1)


def rotation_6d_to_matrix(d6: torch.Tensor) -> torch.Tensor:
    """(..., 6) -> proper rotations (..., 3, 3) by Gram-Schmidt on the two column vectors."""
    if d6.shape[-1] != 6:
        raise ValueError(f'6D rotations must be (..., 6), got {tuple(d6.shape)}')
    a, b = d6[..., :3], d6[..., 3:]
    x = a / a.norm(dim=-1, keepdim=True).clamp_min(NORM_EPS)
    b = b - (x * b).sum(dim=-1, keepdim=True) * x
    y = b / b.norm(dim=-1, keepdim=True).clamp_min(NORM_EPS)
    z = torch.linalg.cross(x, y, dim=-1)
    return torch.stack([x, y, z], dim=-1)


def quaternion_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """Quaternions (..., 4) ``(x, y, z, w)``, any non-zero norm -> rotations (..., 3, 3)."""
    if q.shape[-1] != 4:
        raise ValueError(f'quaternions must be (..., 4), got {tuple(q.shape)}')
    q = q / q.norm(dim=-1, keepdim=True).clamp_min(NORM_EPS)
    x, y, z, w = q.unbind(-1)
    rows = [
        1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
        2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
        2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
    ]
    return torch.stack(rows, dim=-1).reshape(q.shape[:-1] + (3, 3))


def matrix_to_quaternion(R: torch.Tensor) -> torch.Tensor:
    """Rotations (..., 3, 3) -> unit quaternions (..., 4) ``(x, y, z, w)`` with ``w >= 0``.

    Of the four algebraically equivalent formulas the one with the largest denominator is used
    per rotation (numerically stable for every angle, 180 deg included).
    """
    _require_matrices(R)
    m = R
    trace = m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2]
    # 4 q_k^2 for k = w, x, y, z
    squares = torch.stack([1 + trace, 1 + 2 * m[..., 0, 0] - trace,
                           1 + 2 * m[..., 1, 1] - trace, 1 + 2 * m[..., 2, 2] - trace], dim=-1)
    roots = torch.sqrt(squares.clamp_min(0.0))  # 2 |q_k|
    candidates = torch.stack([
        torch.stack([m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0],
                     m[..., 1, 0] - m[..., 0, 1], roots[..., 0] ** 2], dim=-1),
        torch.stack([roots[..., 1] ** 2, m[..., 1, 0] + m[..., 0, 1],
                     m[..., 0, 2] + m[..., 2, 0], m[..., 2, 1] - m[..., 1, 2]], dim=-1),
        torch.stack([m[..., 1, 0] + m[..., 0, 1], roots[..., 2] ** 2,
                     m[..., 2, 1] + m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0]], dim=-1),
        torch.stack([m[..., 0, 2] + m[..., 2, 0], m[..., 2, 1] + m[..., 1, 2],
                     roots[..., 3] ** 2, m[..., 1, 0] - m[..., 0, 1]], dim=-1),
    ], dim=-2)  # (..., 4 formulas, 4 components (x, y, z, w)); formula k = 2 q_k * q
    best = roots.argmax(dim=-1)
    index = best[..., None, None].expand(best.shape + (1, 4))
    chosen = torch.gather(candidates, -2, index)[..., 0, :]
    q = chosen / chosen.norm(dim=-1, keepdim=True).clamp_min(NORM_EPS)
    return torch.where(q[..., 3:] < 0, -q, q)


def rotation_to_parameters(R: torch.Tensor, parameterisation: str) -> torch.Tensor:
    """Rotations (..., 3, 3) -> (..., 6) or (..., 4)."""
    rotation_dim(parameterisation)
    return matrix_to_rotation_6d(R) if parameterisation == '6d' else matrix_to_quaternion(R)


def parameters_to_rotation(params: torch.Tensor, parameterisation: str) -> torch.Tensor:
    """(..., 6) or (..., 4) -> rotations (..., 3, 3)."""
    rotation_dim(parameterisation)
    return (rotation_6d_to_matrix(params) if parameterisation == '6d'
            else quaternion_to_matrix(params))


def encode_cameras(R: torch.Tensor, t: torch.Tensor, focal_ndc: torch.Tensor,
                   parameterisation: str) -> torch.Tensor:
    """Cameras -> encodings (..., D), D = :func:`camera_encoding_dim`.

    Args:
        R: (..., 3, 3) world-to-camera rotations.
        t: (..., 3) world-to-camera translations.
        focal_ndc: (...,) positive focal lengths in crop NDC units (``2 f_px / side``).
        parameterisation: '6d' or 'quaternion'.
    """
    if t.shape[-1] != TRANSLATION_DIM or focal_ndc.shape != t.shape[:-1]:
        raise ValueError(f'need t (..., 3) and focal_ndc (...,), got {tuple(t.shape)}, '
                         f'{tuple(focal_ndc.shape)}')
    rotation = rotation_to_parameters(R, parameterisation)
    return torch.cat([t, rotation, torch.log(focal_ndc)[..., None]], dim=-1)


def decode_cameras(encoding: torch.Tensor, parameterisation: str
                   ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Encodings (..., D) -> (R (..., 3, 3), t (..., 3), focal_ndc (...,)); differentiable."""
    size = camera_encoding_dim(parameterisation)
    if encoding.shape[-1] != size:
        raise ValueError(f'{parameterisation} camera encodings are (..., {size}), got '
                         f'{tuple(encoding.shape)}')
    t = encoding[..., :TRANSLATION_DIM]
    R = parameters_to_rotation(encoding[..., TRANSLATION_DIM:-FOCAL_DIM], parameterisation)
    return R, t, torch.exp(encoding[..., -1])


def focal_ndc_from_pixels(focal_px: torch.Tensor, crop_side_px: torch.Tensor) -> torch.Tensor:
    """Focal length (...,) in pixels -> crop NDC units ``2 f / side`` (side of the square crop)."""
    return 2.0 * focal_px / crop_side_px


def focal_pixels_from_ndc(focal_ndc: torch.Tensor, crop_side_px: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`focal_ndc_from_pixels`."""
    return focal_ndc * crop_side_px / 2.0


def _require_matrices(R: torch.Tensor) -> None:
    if R.shape[-2:] != (3, 3):
        raise ValueError(f'rotations must be (..., 3, 3), got {tuple(R.shape)}')
