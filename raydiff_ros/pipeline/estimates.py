"""One view set's estimate, ready to publish: scaled mean poses, covariances, intrinsics.

``summarize_estimate`` chains the pure steps the node runs on the worker thread after the
estimator returned its ``EstimationResult`` for ``view_set.estimation_input()``:

1. the ``reference_T_camera`` samples, view 0 the reference (every sample of a diffusion
   estimator, or its one point estimate);
2. the scale: for relocalization sets the map alignment (``relocalization.relocalize``,
   metric), otherwise ``scale.fix_scale`` (``none`` or ``known_baseline``);
3. mean pose and covariance of every camera w.r.t. the reference (``uncertainty``), with the
   unknown-scale inflation when the scale is not metric; each camera keeps the estimator's
   pose source (what fixed its pose).

The result mirrors ``msg/ViewSetEstimate.msg`` / ``CameraEstimate.msg`` field by field (plus the
relocalization result, and the scaled samples for ``pose_graph.build_pose_graph``).
"""

from dataclasses import dataclass
from typing import Optional

import numpy as np

from raydiff_ros.estimation.contract import EstimationResult
from raydiff_ros.pipeline.camera_info import PinholeIntrinsics
from raydiff_ros.pipeline.relocalization import (
    RelocalizationConfig,
    RelocalizationResult,
    relocalize,
)
from raydiff_ros.pipeline.scale import ScaleConfig, ScaleSource, fix_scale
from raydiff_ros.pipeline.uncertainty import UncertaintyConfig, camera_statistics
from raydiff_ros.pipeline.view_sets import ViewSet, ViewSetMode


class EstimateError(ValueError):
    """Samples that do not fit the view set."""


@dataclass(frozen=True, eq=False)
class CameraEstimate:
    """One camera of a view-set estimate (``CameraEstimate.msg``).

    Attributes:
        camera_index: index in the node's camera list.
        stamp_ns: the image stamp.
        frame_id: the camera's optical frame.
        reference_T_camera: (4, 4) pose in the reference (view 0) optical frame; metres when
            the scale source is metric.
        covariance: (6, 6) ROS order, in the reference frame.
        intrinsics: (fx, fy, cx, cy) in pixels of the incoming (full-size) image, or None.
        intrinsics_estimated: True when the intrinsics came from the model, not CameraInfo.
        pose_source: what fixed this camera's pose, the estimator's
            ``EstimationResult.pose_sources`` entry: ``'reference'`` for view 0,
            ``'verified_matches'`` when geometrically verified feature matches fixed it,
            ``'prior'`` when only the learned prior did, or the estimator's own name.
    """

    camera_index: int
    stamp_ns: int
    frame_id: str
    reference_T_camera: np.ndarray  # noqa: N815 (frame names)
    covariance: np.ndarray
    intrinsics: Optional[tuple[float, float, float, float]]
    intrinsics_estimated: bool
    pose_source: str


@dataclass(frozen=True, eq=False)
class ViewSetEstimate:
    """A published estimate (``ViewSetEstimate.msg``).

    Attributes:
        mode: how the view set was formed.
        scale_source: how the translation unit was fixed.
        cameras: one per view; cameras[0] is the reference (identity pose).
        num_samples: S.
        stamp_ns: newest stamp of the set.
        reference_frame_id: frame id of view 0.
        reference_T_camera_samples: (S, N, 4, 4) scaled samples (pose-graph edge covariances).
        relocalization: the map alignment for relocalization sets, else None.
    """

    mode: ViewSetMode
    scale_source: ScaleSource
    cameras: tuple[CameraEstimate, ...]
    num_samples: int
    stamp_ns: int
    reference_frame_id: str
    reference_T_camera_samples: np.ndarray  # noqa: N815 (frame names)
    relocalization: Optional[RelocalizationResult] = None

    @property
    def metric(self) -> bool:
        return self.scale_source.metric

    @property
    def reference_T_cameras(self) -> np.ndarray:
        """(N, 4, 4) mean poses of the cameras in the reference frame."""
        return np.stack([c.reference_T_camera for c in self.cameras])


def _full_size_intrinsics(
    K: np.ndarray, stored_size: tuple[int, int], source_size: tuple[int, int]
) -> tuple[float, float, float, float]:
    """(fx, fy, cx, cy) of (3, 3) ``K`` of a stored image, rescaled to the incoming size."""
    intrinsics = PinholeIntrinsics(
        fx=float(K[0, 0]), fy=float(K[1, 1]), cx=float(K[0, 2]), cy=float(K[1, 2]),
        skew=float(K[0, 1]), width=stored_size[0], height=stored_size[1],
    ).scaled_to(*source_size)
    return intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy


def summarize_estimate(
    view_set: ViewSet,
    result: EstimationResult,
    scale: Optional[ScaleConfig] = None,
    uncertainty: Optional[UncertaintyConfig] = None,
    relocalization: Optional[RelocalizationConfig] = None,
) -> ViewSetEstimate:
    """Scale, average and attach covariances to the samples of one view set.

    Args:
        view_set: the view set the result estimates.
        result: the estimator's S samples of its N cameras (view 0 the reference).
        scale: scale source for rig / temporal sets (default ``ScaleConfig()``).
        uncertainty: covariance parameters of the camera poses (default
            ``UncertaintyConfig()``).
        relocalization: parameters of the map alignment for relocalization sets (default
            ``RelocalizationConfig()``).

    Raises:
        EstimateError: the result has a different number of views.
        RelocalizationError, ScaleError, PoseError: from the steps above.
    """
    if result.num_views != view_set.num_views:
        raise EstimateError(
            f'{result.num_views} estimated views for a view set of {view_set.num_views}'
        )
    scale = scale or ScaleConfig()
    uncertainty = uncertainty or UncertaintyConfig()
    relocalization = relocalization or RelocalizationConfig()
    poses = result.samples_reference_T_camera
    relocalized = None
    if view_set.mode == ViewSetMode.RELOCALIZATION:
        relocalized = relocalize(poses, view_set.map_T_cameras, 0, relocalization)
        scaled = relocalized.scaled_reference_T_cameras
        source = ScaleSource.MAP_ALIGNMENT
    else:
        fixed = fix_scale(poses, view_set.camera_indices, view_set.mode, scale)
        scaled, source = fixed.reference_T_cameras, fixed.source
    means, covariances = camera_statistics(scaled, uncertainty, scale_known=source.metric)

    cameras = []
    for i in range(view_set.num_views):
        height, width = view_set.images[i].shape[:2]
        if view_set.K[i] is not None:
            K, estimated = view_set.K[i], False
        elif result.intrinsics_estimated and result.K is not None:
            K, estimated = result.K[i], True
        else:
            K, estimated = None, False
        intrinsics = (
            None if K is None
            else _full_size_intrinsics(K, (width, height), view_set.source_size(i))
        )
        cameras.append(
            CameraEstimate(
                camera_index=view_set.camera_indices[i],
                stamp_ns=view_set.stamps_ns[i],
                frame_id=view_set.frame_ids[i],
                reference_T_camera=means[i],
                covariance=covariances[i],
                intrinsics=intrinsics,
                intrinsics_estimated=estimated,
                pose_source=result.pose_sources[i],
            )
        )
    return ViewSetEstimate(
        mode=view_set.mode,
        scale_source=source,
        cameras=tuple(cameras),
        num_samples=result.num_samples,
        stamp_ns=view_set.newest_stamp_ns,
        reference_frame_id=view_set.frame_ids[0],
        reference_T_camera_samples=scaled,
        relocalization=relocalized,
    )
