"""Plot predicted (similarity-aligned) against true cameras of one view set as a 3-D PNG.

Each camera is drawn as a wireframe frustum: its centre joined to the four image corners
unprojected to a depth of ``FRUSTUM_DEPTH_FRACTION`` of the scene scale, with a thicker
top edge (the image's first row, i.e. the camera's -y direction) so the roll is visible.
The prediction is first mapped into the ground-truth world by the centre alignment of the
metrics (``ViewSetErrors.alignment``, ``gt_T_pred``). Matplotlib is used through its Agg
canvas only (no pyplot, no global backend change).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np

from raydiff_ros.geometry.alignment import Similarity, transform_cameras
from raydiff_ros.geometry.transforms import camera_centers

if TYPE_CHECKING:
    from raydiff_ros.evaluation.datasets import MultiViewDataset
    from raydiff_ros.evaluation.harness import EvaluatedViewSet

PLOT_FILE_NAME = 'cameras.png'
FRUSTUM_DEPTH_FRACTION = 0.15
FIGURE_SIZE_INCHES = (7.0, 6.0)
FIGURE_DPI = 110
GROUND_TRUTH_COLOR = 'tab:green'
PREDICTION_COLOR = 'tab:red'
OFFSET_COLOR = 'tab:gray'
PLOT_MARGIN = 1.1
GROUND_TRUTH_WIDTH = 1.8
PREDICTION_WIDTH = 0.8
TOP_EDGE_WIDTH_FACTOR = 3.0
LABEL_FONT_SIZE = 8


def frustum_corners_world(
    K: np.ndarray, R: np.ndarray, t: np.ndarray, image_sizes: np.ndarray, depth: float
) -> np.ndarray:
    """Image corners unprojected to ``depth`` in world coordinates.

    Args:
        K: (N, 3, 3) intrinsics in pixels.
        R: (N, 3, 3) world-to-camera rotations (``cam_T_world``).
        t: (N, 3) world-to-camera translations.
        image_sizes: (N, 2) (width, height) in pixels.
        depth: z depth of the corners in the camera frame (world units).

    Returns:
        (N, 4, 3) corners top-left, top-right, bottom-right, bottom-left.
    """
    width, height = image_sizes[:, 0].astype(np.float64), image_sizes[:, 1].astype(np.float64)
    zeros, ones = np.zeros_like(width), np.ones_like(width)
    pixels = np.stack(
        [
            np.stack([zeros, zeros, ones], -1),
            np.stack([width, zeros, ones], -1),
            np.stack([width, height, ones], -1),
            np.stack([zeros, height, ones], -1),
        ],
        axis=1,
    )
    rays_cam = np.einsum('nij,nkj->nki', np.linalg.inv(K), pixels)
    points_cam = depth * rays_cam / rays_cam[..., 2:3]
    # x_world = R^T (x_cam - t)
    return np.einsum('nji,nkj->nki', R, points_cam - t[:, None, :])


def _draw_cameras(
    axes, corners: np.ndarray, centers: np.ndarray, color: str, label: str, width: float
) -> None:
    for index, (corner, center) in enumerate(zip(corners, centers, strict=True)):
        for point in corner:
            axes.plot(*np.stack([center, point]).T, color=color, linewidth=width)
        loop = np.concatenate([corner, corner[:1]])
        axes.plot(*loop.T, color=color, linewidth=width, label=label if index == 0 else None)
        axes.plot(*corner[:2].T, color=color, linewidth=TOP_EDGE_WIDTH_FACTOR * width)
        axes.text(*center, str(index), color=color, fontsize=LABEL_FONT_SIZE)


def plot_view_set(
    dataset: MultiViewDataset, record: EvaluatedViewSet, path: Path, title: str = ''
) -> Path:
    """Draw true and aligned predicted cameras of ``record`` to a PNG file.

    Args:
        dataset: the dataset of the view set (ground truth, intrinsics, image sizes).
        record: an evaluated view set (prediction and errors with the centre alignment).
        path: PNG file to write.
        title: figure title; default names the dataset and the images.

    Returns:
        ``path``.
    """
    indices = list(record.indices)
    gt_R, gt_t = dataset.R[indices], dataset.t[indices]
    gt_centers = camera_centers(gt_R, gt_t)
    alignment = record.errors.alignment
    if alignment is None:  # degenerate prediction: every centre maps to the true centroid
        alignment = Similarity(0.0, np.eye(3), gt_centers.mean(axis=0))
    pred_R, pred_t = transform_cameras(alignment, record.pred_R, record.pred_t)
    pred_centers = camera_centers(pred_R, pred_t)
    K = dataset.K[indices] if record.prediction.K is None else record.prediction.K
    sizes = dataset.image_sizes[indices]
    depth = FRUSTUM_DEPTH_FRACTION * dataset.scene_scale
    gt_corners = frustum_corners_world(dataset.K[indices], gt_R, gt_t, sizes, depth)
    pred_corners = frustum_corners_world(K, pred_R, pred_t, sizes, depth)

    names = ', '.join(dataset.image_paths[i].name for i in indices)
    return plot_camera_sets(
        [CameraSetStyle(gt_corners, gt_centers, GROUND_TRUTH_COLOR, 'ground truth',
                        GROUND_TRUTH_WIDTH),
         CameraSetStyle(pred_corners, pred_centers, PREDICTION_COLOR, 'prediction (aligned)',
                        PREDICTION_WIDTH)],
        path, title or f'{dataset.name}: {names}', links=(gt_centers, pred_centers))


@dataclass(frozen=True)
class CameraSetStyle:
    """One set of cameras to draw: frustum corners (N, 4, 3), centres (N, 3), and style."""

    corners: np.ndarray
    centers: np.ndarray
    color: str
    label: str
    width: float


def plot_camera_sets(
    camera_sets: Sequence[CameraSetStyle], path: Path, title: str,
    links: Optional[tuple[np.ndarray, np.ndarray]] = None,
) -> Path:
    """Draw camera frustums of one or more sets in one 3-D figure and save it as a PNG.

    Args:
        camera_sets: the sets to draw (see :class:`CameraSetStyle`; corners from
            :func:`frustum_corners_world`).
        path: PNG file to write.
        title: figure title.
        links: optional pair of (N, 3) centre arrays joined by dashed lines (e.g. errors).

    Returns:
        ``path``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=FIGURE_SIZE_INCHES, dpi=FIGURE_DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(projection='3d')
    for style in camera_sets:
        _draw_cameras(axes, style.corners, style.centers, style.color, style.label, style.width)
    if links is not None:
        for start, end in zip(*links, strict=True):
            axes.plot(*np.stack([start, end]).T, color=OFFSET_COLOR, linestyle='--')

    points = np.concatenate([style.corners.reshape(-1, 3) for style in camera_sets])
    middle = 0.5 * (points.min(axis=0) + points.max(axis=0))
    half = PLOT_MARGIN * 0.5 * float(np.max(points.max(axis=0) - points.min(axis=0)))
    axes.set_xlim(middle[0] - half, middle[0] + half)
    axes.set_ylim(middle[1] - half, middle[1] + half)
    axes.set_zlim(middle[2] - half, middle[2] + half)
    axes.set_box_aspect((1.0, 1.0, 1.0))
    axes.set_xlabel('x')
    axes.set_ylabel('y')
    axes.set_zlabel('z')
    axes.legend(loc='upper left', fontsize=LABEL_FONT_SIZE)
    axes.set_title(title, fontsize=LABEL_FONT_SIZE, wrap=True)
    path = Path(path)
    figure.savefig(path)
    return path
