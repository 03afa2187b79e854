"""Rig calibration: aggregate the camera poses of many view sets into one set of extrinsics.

Each view set ``s`` holds a subset of the rig's cameras, posed as ``set_T_camera`` in its own
frame (the optical frame of its first camera), with its own unknown scale unless it is metric.
The unknowns are the extrinsics ``rig_T_camera`` (rig frame = camera 0's optical frame, so
``rig_T_camera[0]`` is the identity) and, per view set, a similarity gauge ``rig_T_set``
(rotation ``R_s``, scale ``lambda_s``, translation ``u_s``) with

    rig_R_camera ~ R_s @ set_R_camera,    rig_t_camera ~ lambda_s R_s set_t_camera + u_s.

``RigCalibrator.solve`` initialises both by breadth-first chaining from camera 0, then
alternates (block coordinate descent) between

1. the gauges, given the cameras: ``R_s`` the geodesic L1 mean of ``rig_R_c set_R_c^T`` over
   the set's inlier cameras, ``lambda_s, u_s`` the least-squares fit of the set's camera
   centres (``lambda_s = 1`` for metric sets);
2. the cameras, given the gauges: the geodesic L1 rotation mean and the geometric median of
   the translations mapped from every view set holding the camera;

and, between rounds, flags as outliers the observations whose rotation residual, or whose
translation residual against a gauge refitted to the rotation inliers, exceeds the configured
bounds (a view set left with fewer than two inlier cameras is dropped). Once the outliers are
flagged the camera centres take the arithmetic mean (``median_after_rejection`` keeps the
median). The covariances are the standard errors of the means of the inlier observations; on
the synthetic rig of the tests they underestimate the true error by about a factor 1.5 (the
gauges are fitted to the same observations).

The overall scale is fixed by a known baseline between two cameras when one is given, else by
the metric view sets, else set to a mean camera distance of 1 from camera 0 (no unit).
"""

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from raydiff_ros.calibration.robust_mean import geometric_median, l1_mean_rotation
from raydiff_ros.geometry.transforms import (
    PoseError,
    check_transforms,
    make_transforms,
    rotation_angle,
    rotation_log,
)
from raydiff_ros.pipeline.estimates import ViewSetEstimate
from raydiff_ros.pipeline.view_sets import ViewSetMode

MIN_CAMERAS = 2
"""Fewest cameras in a rig and in a view set."""

SCALE_KNOWN_BASELINE = 'known_baseline'
SCALE_METRIC_VIEW_SETS = 'metric_view_sets'
SCALE_NONE = 'none'

DEGENERATE_SPREAD = 1e-12
"""A view set whose inlier camera centres spread less than this (squared, set units) cannot fix
its scale."""


class CalibrationError(ValueError):
    """Bad input to the rig calibration, or a rig that the view sets cannot determine."""


@dataclass(frozen=True)
class RigCalibrationConfig:
    """Parameters of the rig calibration.

    Attributes:
        outlier_angle_deg: an observation whose rotation differs from the estimate by more
            than this is an outlier.
        outlier_translation_fraction: an observation whose camera centre lies further than
            this fraction of the rig size (mean camera distance from camera 0) from the
            estimate is an outlier.
        rejection_rounds: rounds of outlier flagging after the first robust solve.
        median_after_rejection: keep averaging camera centres by their geometric median
            after the outliers are flagged; False takes their arithmetic mean, more efficient
            under Gaussian noise once the gross outliers are gone (rotations always take the
            geodesic L1 mean).
        max_iterations: most alternations per round.
        tolerance_deg: an alternation moving no rotation more than this ends a round.
        tolerance_fraction: ... and no camera centre more than this fraction of the rig size.
        convergence_window: the convergence report compares the solution from all view sets
            with the one without the last this many view sets.
        converged_rotation_deg: the calibration counts as converged when the window changed no
            rotation more than this ...
        converged_translation_fraction: ... and no camera centre more than this fraction of
            the rig size.
        covariance_floor_rad2: added to the rotation-covariance trace of an observation
            before it is inverted into a weight (radians squared).
    """

    outlier_angle_deg: float = 8.0
    outlier_translation_fraction: float = 0.2
    rejection_rounds: int = 2
    median_after_rejection: bool = False
    max_iterations: int = 50
    tolerance_deg: float = 1e-3
    tolerance_fraction: float = 1e-5
    convergence_window: int = 5
    converged_rotation_deg: float = 0.5
    converged_translation_fraction: float = 0.01
    covariance_floor_rad2: float = 1e-6

    def __post_init__(self) -> None:
        positive = (
            'outlier_angle_deg', 'outlier_translation_fraction', 'tolerance_deg',
            'tolerance_fraction', 'converged_rotation_deg', 'converged_translation_fraction',
            'covariance_floor_rad2',
        )
        for name in positive:
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise CalibrationError(f'{name} must be finite and > 0, got {value}')
        for name in ('max_iterations', 'convergence_window'):
            if getattr(self, name) < 1:
                raise CalibrationError(f'{name} must be >= 1, got {getattr(self, name)}')
        if self.rejection_rounds < 0:
            raise CalibrationError(f'rejection_rounds must be >= 0, got {self.rejection_rounds}')


@dataclass(frozen=True)
class ConvergenceReport:
    """How much the calibration changed over the last view sets.

    Attributes:
        window: number of most recent view sets left out for the comparison.
        rotation_change_deg: largest rotation change of a camera (inf when the solution
            without the window is undetermined).
        translation_change: largest camera-centre change, in the calibration's units.
        translation_change_fraction: the same as a fraction of the rig size.
        converged: both changes are below the configured thresholds.
    """

    window: int
    rotation_change_deg: float
    translation_change: float
    translation_change_fraction: float
    converged: bool


@dataclass(frozen=True, eq=False)
class RigCalibration:
    """The extrinsics of a rig and their uncertainty.

    Attributes:
        rig_T_camera: (C, 4, 4) pose of each camera's optical frame in the rig frame (camera
            0's optical frame); metres when ``metric``.
        covariances: (C, 6, 6) covariance of each pose, ROS order (x, y, z, rx, ry, rz),
            rotation as a left perturbation about the rig axes; the standard error of the
            mean of the inlier observations (translation-rotation cross terms zero). Zero for
            camera 0; NaN for a camera with fewer
            than two inlier observations.
        rotation_std_deg: (C,) ``sqrt(trace)`` of the rotation block, degrees.
        translation_std: (C,) ``sqrt(trace)`` of the translation block, calibration units.
        view_sets_used: (C,) number of view sets in which the camera was an inlier.
        inliers: one (k_s,) bool array per view set, in the order added: which of its
            cameras were used.
        scale_source: ``'known_baseline'``, ``'metric_view_sets'`` or ``'none'``.
        convergence: the change over the last view sets.
    """

    rig_T_camera: np.ndarray
    covariances: np.ndarray
    rotation_std_deg: np.ndarray
    translation_std: np.ndarray
    view_sets_used: np.ndarray
    inliers: tuple[np.ndarray, ...]
    scale_source: str
    convergence: ConvergenceReport

    @property
    def metric(self) -> bool:
        return self.scale_source != SCALE_NONE

    @property
    def num_cameras(self) -> int:
        return self.rig_T_camera.shape[0]


@dataclass(frozen=True, eq=False)
class _ViewSetObservation:
    """One added view set: camera indices (k,), ``set_R_camera`` (k, 3, 3), ``set_t_camera``
    (k, 3), rotation weights (k,), whether its translations are metric."""

    cameras: np.ndarray
    R: np.ndarray
    t: np.ndarray
    rotation_weights: np.ndarray
    metric: bool


@dataclass
class _Gauge:
    """``rig_T_set`` of one view set; ``valid`` False when the set is dropped."""

    R: np.ndarray = field(default_factory=lambda: np.eye(3))
    scale: float = 1.0
    translation: np.ndarray = field(default_factory=lambda: np.zeros(3))
    valid: bool = False
    translation_valid: bool = False


@dataclass(frozen=True)
class _Baseline:
    camera_a: int
    camera_b: int
    metres: float


class RigCalibrator:
    """Collects view-set estimates of a rig and solves for its extrinsics.

    Args:
        num_cameras: C >= 2, the cameras of the rig, indexed 0..C-1; camera 0 is the rig frame.
        config: parameters (default ``RigCalibrationConfig()``).
    """

    def __init__(self, num_cameras: int, config: Optional[RigCalibrationConfig] = None):
        if isinstance(num_cameras, bool) or not isinstance(num_cameras, (int, np.integer)):
            raise CalibrationError(f'num_cameras must be an int, got {type(num_cameras).__name__}')
        if num_cameras < MIN_CAMERAS:
            raise CalibrationError(
                f'a rig needs at least {MIN_CAMERAS} cameras, got {num_cameras}'
            )
        self.num_cameras = int(num_cameras)
        self.config = config or RigCalibrationConfig()
        self._view_sets: list[_ViewSetObservation] = []
        self._baseline: Optional[_Baseline] = None

    @property
    def num_view_sets(self) -> int:
        return len(self._view_sets)

    def add(
        self,
        camera_indices: np.ndarray,
        reference_T_cameras: np.ndarray,
        covariances: Optional[np.ndarray] = None,
        metric: bool = False,
    ) -> None:
        """Add one view set.

        Args:
            camera_indices: (N,) distinct rig camera indices, N >= 2; the first is the set's
                reference.
            reference_T_cameras: (N, 4, 4) pose of each camera in the set's frame (any frame
                rigidly attached to the set; normally the first camera's optical frame);
                metres when ``metric``, else any scale.
            covariances: optional (N, 6, 6) pose covariances (ROS order); the rotation blocks
                weight the rotation observations.
            metric: the translations are in metres.

        Raises:
            CalibrationError: wrong shapes, repeated or out-of-range indices, non-finite or
                non-rigid poses, non-finite covariances.
        """
        cameras = np.asarray(camera_indices)
        if cameras.ndim != 1 or not np.issubdtype(cameras.dtype, np.integer):
            raise CalibrationError(f'camera_indices must be a 1-D int array, got {cameras!r}')
        if cameras.size < MIN_CAMERAS:
            raise CalibrationError(
                f'a view set needs at least {MIN_CAMERAS} cameras, got {cameras.size}'
            )
        if len(set(cameras.tolist())) != cameras.size:
            raise CalibrationError(f'camera_indices repeat a camera: {cameras.tolist()}')
        if cameras.min() < 0 or cameras.max() >= self.num_cameras:
            raise CalibrationError(
                f'camera_indices {cameras.tolist()} outside 0..{self.num_cameras - 1}'
            )
        try:
            poses = check_transforms(reference_T_cameras, 'reference_T_cameras')
        except PoseError as error:
            raise CalibrationError(str(error)) from error
        if poses.shape != (cameras.size, 4, 4):
            raise CalibrationError(
                f'reference_T_cameras must have shape ({cameras.size}, 4, 4), got {poses.shape}'
            )
        rotation_weights = np.ones(cameras.size)
        if covariances is not None:
            covariances = np.asarray(covariances, dtype=np.float64)
            if covariances.shape != (cameras.size, 6, 6):
                raise CalibrationError(
                    f'covariances must have shape ({cameras.size}, 6, 6), got {covariances.shape}'
                )
            if not np.all(np.isfinite(covariances)):
                raise CalibrationError('covariances contain non-finite values')
            traces = np.trace(covariances[:, 3:, 3:], axis1=1, axis2=2)
            rotation_weights = 1.0 / (np.maximum(traces, 0.0) + self.config.covariance_floor_rad2)
            # The reference's covariance is zero by construction (it is the gauge), not
            # because its orientation is exact: give it the set's typical weight.
            rotation_weights[0] = np.median(rotation_weights[1:])
        self._view_sets.append(
            _ViewSetObservation(
                cameras=cameras.astype(np.int64),
                R=poses[:, :3, :3].copy(),
                t=poses[:, :3, 3].copy(),
                rotation_weights=rotation_weights,
                metric=bool(metric),
            )
        )

    def add_estimate(self, estimate: ViewSetEstimate) -> None:
        """Add a rig view set published by the estimator (``ViewSetEstimate``).

        Uses each camera's ``camera_index``, ``reference_T_camera`` and ``covariance``; the
        set is metric when its scale source is.

        Raises:
            CalibrationError: the estimate is not of a rig view set (temporal and
                relocalization sets do not observe the cameras at one instant), or as ``add``.
        """
        if estimate.mode != ViewSetMode.RIG:
            raise CalibrationError(
                f'only rig view sets calibrate a rig, got a {estimate.mode.name.lower()} set'
            )
        self.add(
            np.array([camera.camera_index for camera in estimate.cameras], dtype=np.int64),
            estimate.reference_T_cameras,
            np.stack([camera.covariance for camera in estimate.cameras]),
            metric=estimate.metric,
        )

    def scale_from_baseline(self, camera_a: int, camera_b: int, metres: float) -> None:
        """Fix the unit: the centres of cameras a and b are ``metres`` apart.

        Overrides the scale of metric view sets (their scale is then fitted like the others).

        Raises:
            CalibrationError: equal or out-of-range cameras, or a distance not finite and > 0.
        """
        for camera in (camera_a, camera_b):
            if not 0 <= int(camera) < self.num_cameras:
                raise CalibrationError(
                    f'baseline camera {camera} outside 0..{self.num_cameras - 1}'
                )
        if int(camera_a) == int(camera_b):
            raise CalibrationError(f'baseline cameras must differ, got {camera_a} twice')
        if not (np.isfinite(metres) and metres > 0):
            raise CalibrationError(f'baseline must be finite and > 0 metres, got {metres}')
        self._baseline = _Baseline(int(camera_a), int(camera_b), float(metres))

    def solve(self) -> RigCalibration:
        """Solve for the extrinsics from all view sets added so far.

        Raises:
            CalibrationError: no view sets, a camera not linked to camera 0 through any chain
                of view sets, or a camera whose distance the view sets cannot fix.
        """
        if not self._view_sets:
            raise CalibrationError('no view sets were added')
        solution = _solve(self._view_sets, self.num_cameras, self.config, self._baseline)
        window = self.config.convergence_window
        earlier = None
        if len(self._view_sets) > window:
            try:
                earlier = _solve(
                    self._view_sets[:-window], self.num_cameras, self.config, self._baseline
                )
            except CalibrationError:
                earlier = None
        convergence = _convergence(solution, earlier, window, self.config)
        return RigCalibration(
            rig_T_camera=solution.rig_T_camera,
            covariances=solution.covariances,
            rotation_std_deg=np.degrees(
                np.sqrt(np.trace(solution.covariances[:, 3:, 3:], axis1=1, axis2=2))
            ),
            translation_std=np.sqrt(np.trace(solution.covariances[:, :3, :3], axis1=1, axis2=2)),
            view_sets_used=solution.view_sets_used,
            inliers=solution.inliers,
            scale_source=solution.scale_source,
            convergence=convergence,
        )


@dataclass(frozen=True, eq=False)
class _Solution:
    rig_T_camera: np.ndarray
    covariances: np.ndarray
    view_sets_used: np.ndarray
    inliers: tuple[np.ndarray, ...]
    scale_source: str
    rig_size: float


def _convergence(
    solution: _Solution,
    earlier: Optional[_Solution],
    window: int,
    config: RigCalibrationConfig,
) -> ConvergenceReport:
    if earlier is None:
        return ConvergenceReport(window, np.inf, np.inf, np.inf, False)
    rotation_change = float(
        np.degrees(
            rotation_angle(
                np.swapaxes(earlier.rig_T_camera[:, :3, :3], -1, -2)
                @ solution.rig_T_camera[:, :3, :3]
            ).max()
        )
    )
    translation_change = float(
        np.linalg.norm(earlier.rig_T_camera[:, :3, 3] - solution.rig_T_camera[:, :3, 3], axis=-1)
        .max()
    )
    fraction = translation_change / solution.rig_size
    converged = (
        rotation_change <= config.converged_rotation_deg
        and fraction <= config.converged_translation_fraction
    )
    return ConvergenceReport(window, rotation_change, translation_change, fraction, converged)


def _check_connected(view_sets: list[_ViewSetObservation], num_cameras: int) -> None:
    """Raise unless every camera is linked to camera 0 through a chain of view sets."""
    linked = {0}
    grew = True
    while grew:
        grew = False
        for view_set in view_sets:
            members = set(view_set.cameras.tolist())
            if members & linked and not members <= linked:
                linked |= members
                grew = True
    missing = sorted(set(range(num_cameras)) - linked)
    if missing:
        raise CalibrationError(
            f'camera(s) {missing} are never observed with camera 0 through any chain of view sets'
        )


def _initial_rotations(view_sets: list[_ViewSetObservation], num_cameras: int) -> np.ndarray:
    """(C, 3, 3) ``rig_R_camera`` chained breadth-first from camera 0."""
    rotations = np.tile(np.eye(3), (num_cameras, 1, 1))
    known = np.zeros(num_cameras, dtype=bool)
    known[0] = True
    while not known.all():
        candidates: dict[int, list[np.ndarray]] = {}
        for view_set in view_sets:
            is_known = known[view_set.cameras]
            if not is_known.any() or is_known.all():
                continue
            gauge = l1_mean_rotation(
                rotations[view_set.cameras[is_known]]
                @ np.swapaxes(view_set.R[is_known], -1, -2),
                view_set.rotation_weights[is_known],
            )
            for j in np.flatnonzero(~is_known):
                candidates.setdefault(int(view_set.cameras[j]), []).append(gauge @ view_set.R[j])
        for camera, found in candidates.items():
            rotations[camera] = l1_mean_rotation(np.stack(found), np.ones(len(found)))
            known[camera] = True
    return rotations


def _fit_translation_gauge(
    rig_t: np.ndarray, mapped: np.ndarray, fixed_scale: bool
) -> Optional[tuple[float, np.ndarray]]:
    """``(lambda, u)`` with ``rig_t ~ lambda * mapped + u`` for (k, 3) centres, or None.

    ``mapped`` are the set's centres rotated into rig axes. With ``fixed_scale``, lambda = 1.
    """
    if fixed_scale:
        return 1.0, geometric_median(rig_t - mapped, np.ones(len(rig_t)))
    if len(rig_t) < MIN_CAMERAS:
        return None
    mapped_centred = mapped - mapped.mean(axis=0)
    rig_centred = rig_t - rig_t.mean(axis=0)
    spread = float(np.sum(mapped_centred**2))
    if spread <= DEGENERATE_SPREAD:
        return None
    scale = float(np.sum(mapped_centred * rig_centred)) / spread
    if scale <= 0:
        return None
    return scale, rig_t.mean(axis=0) - scale * mapped.mean(axis=0)


def _initial_translations(
    view_sets: list[_ViewSetObservation],
    rotations: np.ndarray,
    metric_sets: np.ndarray,
) -> np.ndarray:
    """(C, 3) ``rig_t_camera`` chained from camera 0; the unit is the first anchor's."""
    num_cameras = rotations.shape[0]
    translations = np.zeros((num_cameras, 3))
    known = np.zeros(num_cameras, dtype=bool)
    known[0] = True
    fixed_scale = metric_sets.copy()
    if not fixed_scale.any():
        # Free global scale: the largest view set holding camera 0 sets the unit.
        holding = [i for i, v in enumerate(view_sets) if 0 in v.cameras]
        fixed_scale[max(holding, key=lambda i: view_sets[i].cameras.size)] = True
    while not known.all():
        candidates: dict[int, list[np.ndarray]] = {}
        for index, view_set in enumerate(view_sets):
            is_known = known[view_set.cameras]
            if not is_known.any() or is_known.all():
                continue
            cams = view_set.cameras
            gauge = l1_mean_rotation(
                rotations[cams[is_known]] @ np.swapaxes(view_set.R[is_known], -1, -2),
                np.ones(int(is_known.sum())),
            )
            mapped = view_set.t @ gauge.T
            fit = _fit_translation_gauge(
                translations[cams[is_known]], mapped[is_known], bool(fixed_scale[index])
            )
            if fit is None:
                continue
            scale, offset = fit
            for j in np.flatnonzero(~is_known):
                candidates.setdefault(int(cams[j]), []).append(scale * mapped[j] + offset)
        if not candidates:
            missing = np.flatnonzero(~known).tolist()
            raise CalibrationError(
                f'the distance of camera(s) {missing} from the rig is undetermined: no view set '
                'links them to two placed cameras (or one, when metric)'
            )
        for camera, found in candidates.items():
            translations[camera] = geometric_median(np.stack(found), np.ones(len(found)))
            known[camera] = True
    return translations


def _rig_size(translations: np.ndarray) -> float:
    """Mean distance of the cameras 1..C-1 from camera 0."""
    return float(np.linalg.norm(translations[1:], axis=-1).mean())


def _normalize_scale(translations: np.ndarray, baseline: Optional[_Baseline]) -> np.ndarray:
    if baseline is not None:
        current = np.linalg.norm(translations[baseline.camera_b] - translations[baseline.camera_a])
        target = baseline.metres
    else:
        current, target = _rig_size(translations), 1.0
    if current <= 0:
        raise CalibrationError('the rig collapsed to a point; the scale is undetermined')
    return translations * (target / current)


def _fit_gauges(
    view_sets: list[_ViewSetObservation],
    flags: list[np.ndarray],
    rotations: np.ndarray,
    translations: np.ndarray,
    metric_sets: np.ndarray,
    previous: Optional[list[_Gauge]] = None,
) -> list[_Gauge]:
    """Fit every view set's gauge to the cameras (warm-started from ``previous``)."""
    gauges = []
    rows = zip(view_sets, flags, metric_sets, strict=True)
    for index, (view_set, inlier, metric) in enumerate(rows):
        gauge = _Gauge()
        if inlier.sum() >= MIN_CAMERAS:
            cams = view_set.cameras[inlier]
            initial = None
            if previous is not None and previous[index].valid:
                initial = previous[index].R
            gauge.R = l1_mean_rotation(
                rotations[cams] @ np.swapaxes(view_set.R[inlier], -1, -2),
                view_set.rotation_weights[inlier],
                initial,
            )
            gauge.valid = True
            fit = _fit_translation_gauge(
                translations[cams], view_set.t[inlier] @ gauge.R.T, bool(metric)
            )
            if fit is not None:
                gauge.scale, gauge.translation = fit
                gauge.translation_valid = True
        gauges.append(gauge)
    return gauges


def _camera_observations(
    view_sets: list[_ViewSetObservation],
    flags: list[np.ndarray],
    gauges: list[_Gauge],
    camera: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Inlier observations of ``camera`` in rig coordinates.

    Returns rotations (M, 3, 3), their weights (M,), translations (P, 3), and the indices of
    the view sets that gave the rotations (M,) and the translations (P,).
    """
    rotations, weights, translations, sources, translation_sources = [], [], [], [], []
    for index, (view_set, inlier, gauge) in enumerate(zip(view_sets, flags, gauges, strict=True)):
        if not gauge.valid:
            continue
        hits = np.flatnonzero((view_set.cameras == camera) & inlier)
        for j in hits:
            rotations.append(gauge.R @ view_set.R[j])
            weights.append(view_set.rotation_weights[j])
            sources.append(index)
            if gauge.translation_valid:
                translations.append(gauge.scale * gauge.R @ view_set.t[j] + gauge.translation)
                translation_sources.append(index)
    return (
        np.array(rotations).reshape(-1, 3, 3),
        np.array(weights),
        np.array(translations).reshape(-1, 3),
        np.array(sources, dtype=np.int64),
        np.array(translation_sources, dtype=np.int64),
    )


def _flag_outliers(
    view_sets: list[_ViewSetObservation],
    gauges: list[_Gauge],
    rotations: np.ndarray,
    translations: np.ndarray,
    metric_sets: np.ndarray,
    config: RigCalibrationConfig,
) -> list[np.ndarray]:
    """Inlier flags (k_s,) per view set: rotation residuals against the (L1, robust) gauge
    first, then translation residuals against a gauge refitted to the rotation inliers only,
    so that one bad camera does not drag the scale fit of its set."""
    bound = config.outlier_translation_fraction * _rig_size(translations)
    flags = []
    for view_set, gauge, metric in zip(view_sets, gauges, metric_sets, strict=True):
        cams = view_set.cameras
        angles = np.degrees(
            rotation_angle(np.swapaxes(rotations[cams], -1, -2) @ gauge.R @ view_set.R)
        )
        inlier = angles <= config.outlier_angle_deg
        if gauge.valid and inlier.sum() >= MIN_CAMERAS:
            mapped = view_set.t @ gauge.R.T
            fit = _fit_translation_gauge(translations[cams[inlier]], mapped[inlier], bool(metric))
            if fit is not None:
                scale, offset = fit
                residuals = np.linalg.norm(scale * mapped + offset - translations[cams], axis=-1)
                inlier &= residuals <= bound
        if inlier.sum() < MIN_CAMERAS:
            inlier[:] = False
        flags.append(inlier)
    return flags


def _alternate(
    view_sets: list[_ViewSetObservation],
    flags: list[np.ndarray],
    rotations: np.ndarray,
    translations: np.ndarray,
    metric_sets: np.ndarray,
    baseline: Optional[_Baseline],
    config: RigCalibrationConfig,
    median_translations: bool,
) -> tuple[np.ndarray, np.ndarray, list[_Gauge]]:
    """Alternate gauges and cameras until they stop moving; return cameras and gauges.

    Camera rotations are L1 means; camera centres the geometric median of their observations
    when ``median_translations``, else their arithmetic mean."""
    free_scale = not metric_sets.any()
    gauges = _fit_gauges(view_sets, flags, rotations, translations, metric_sets)
    for _ in range(config.max_iterations):
        new_rotations, new_translations = rotations.copy(), translations.copy()
        for camera in range(1, rotations.shape[0]):
            observed, weights, centres, _, _ = _camera_observations(
                view_sets, flags, gauges, camera
            )
            if len(observed):
                new_rotations[camera] = l1_mean_rotation(observed, weights, rotations[camera])
            if len(centres):
                new_translations[camera] = (
                    geometric_median(centres, np.ones(len(centres))) if median_translations
                    else centres.mean(axis=0)
                )
        if free_scale:
            new_translations = _normalize_scale(new_translations, baseline)
        rotation_step = np.degrees(
            rotation_angle(np.swapaxes(rotations, -1, -2) @ new_rotations).max()
        )
        translation_step = np.linalg.norm(new_translations - translations, axis=-1).max()
        rotations, translations = new_rotations, new_translations
        gauges = _fit_gauges(view_sets, flags, rotations, translations, metric_sets, gauges)
        if (
            rotation_step <= config.tolerance_deg
            and translation_step <= config.tolerance_fraction * _rig_size(translations)
        ):
            break
    return rotations, translations, gauges


def _covariances(
    view_sets: list[_ViewSetObservation],
    flags: list[np.ndarray],
    gauges: list[_Gauge],
    rotations: np.ndarray,
    translations: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(C, 6, 6) standard-error covariances and (C,) inlier view-set counts.

    A view set's gauge is fitted to its own k inlier cameras, which shrinks their residuals;
    each squared residual is scaled by ``k / (k - 1)`` to undo that (exact for a mean of k
    equally noisy observations)."""
    num_cameras = rotations.shape[0]
    covariances = np.zeros((num_cameras, 6, 6))
    used = np.zeros(num_cameras, dtype=np.int64)
    inlier_counts = np.array([inlier.sum() for inlier in flags], dtype=np.float64)
    dof_factors = inlier_counts / np.maximum(inlier_counts - 1.0, 1.0)
    for camera in range(num_cameras):
        observed, _, centres, sources, translation_sources = _camera_observations(
            view_sets, flags, gauges, camera
        )
        used[camera] = np.unique(sources).size
        if camera == 0:
            continue
        if len(observed) < MIN_CAMERAS or len(centres) < MIN_CAMERAS:
            covariances[camera] = np.nan
            continue
        rotation_residuals = rotation_log(observed @ rotations[camera].T)
        translation_residuals = centres - translations[camera]
        blocks = (
            (slice(0, 3), translation_residuals, dof_factors[translation_sources]),
            (slice(3, 6), rotation_residuals, dof_factors[sources]),
        )
        for block, residuals, factors in blocks:
            count = len(residuals)
            scatter = (factors[:, None] * residuals).T @ residuals
            covariances[camera, block, block] = scatter / (count * (count - 1))
    return covariances, used


def _solve(
    view_sets: list[_ViewSetObservation],
    num_cameras: int,
    config: RigCalibrationConfig,
    baseline: Optional[_Baseline],
) -> _Solution:
    _check_connected(view_sets, num_cameras)
    metric_sets = np.array([v.metric for v in view_sets])
    if baseline is not None:
        metric_sets[:] = False
        scale_source = SCALE_KNOWN_BASELINE
    elif metric_sets.any():
        scale_source = SCALE_METRIC_VIEW_SETS
    else:
        scale_source = SCALE_NONE
    rotations = _initial_rotations(view_sets, num_cameras)
    translations = _initial_translations(view_sets, rotations, metric_sets)
    if not metric_sets.any():
        translations = _normalize_scale(translations, baseline)
    flags = [np.ones(v.cameras.size, dtype=bool) for v in view_sets]
    rotations, translations, gauges = _alternate(
        view_sets, flags, rotations, translations, metric_sets, baseline, config,
        median_translations=True,
    )
    for _ in range(config.rejection_rounds):
        flags = _flag_outliers(
            view_sets, gauges, rotations, translations, metric_sets, config
        )
        rotations, translations, gauges = _alternate(
            view_sets, flags, rotations, translations, metric_sets, baseline, config,
            median_translations=config.median_after_rejection,
        )
    covariances, used = _covariances(view_sets, flags, gauges, rotations, translations)
    if np.any(used[1:] == 0):
        raise CalibrationError(
            f'camera(s) {np.flatnonzero(used == 0).tolist()} have no inlier observation left'
        )
    rig_T_camera = make_transforms(rotations, translations)
    rig_T_camera[0] = np.eye(4)
    return _Solution(
        rig_T_camera=rig_T_camera,
        covariances=covariances,
        view_sets_used=used,
        inliers=tuple(flags),
        scale_source=scale_source,
        rig_size=_rig_size(translations),
    )

