"""COLMAP as a ``raydiff-eval`` baseline: pycolmap's incremental SfM (SIFT) on one view set.

Each view set is written to a temporary folder; pycolmap extracts SIFT features per image with
the known intrinsics (PINHOLE, one camera per image), matches every pair, runs the incremental
mapper with the intrinsics held fixed (COLMAP's defaults otherwise, on the CPU; with
``--option sparse=1`` the thresholds of the initial pair and of image registration are
lowered for few, wide views: :data:`SPARSE_MAPPER`), and the largest reconstruction gives the
cameras it registered. A camera COLMAP did not register
counts as a failure: it gets the identity rotation at the world origin (pose source
``'unregistered'``), as the ``matches`` estimator's ``fallback`` does.

Not a dependency of the package: pycolmap (BSD, 38 MB) is installed only where this baseline
is run, e.g. ``pip install --no-deps --target /tmp/pycolmap pycolmap==4.2.1``; then

    PYTHONPATH=/tmp/pycolmap:tools .venv/bin/raydiff-eval ../shared/data/temple_ring \\
        --estimator python:colmap_baseline:make_colmap --num-views 2..8 --sets-per-n 20 \\
        --seed 0 --output OUT
"""

from pathlib import Path
import tempfile
import time

import cv2
import numpy as np

from raydiff_ros.estimation import (
    EstimationResult,
    EstimatorError,
    EstimatorOptions,
    ViewSetInput,
)

SPARSE_MAPPER = {'init_min_num_inliers': 30, 'init_min_tri_angle': 4.0,
                 'abs_pose_min_num_inliers': 15}
"""Mapper settings of ``sparse=1`` (COLMAP's defaults: 100, 16 deg, 30)."""
POSE_SOURCE_COLMAP = 'colmap'
POSE_SOURCE_UNREGISTERED = 'unregistered'


class ColmapEstimator:
    """pycolmap incremental SfM with fixed known intrinsics (see the module docstring)."""

    name = 'colmap'

    def __init__(self, sparse: bool = False) -> None:
        self.sparse = sparse
        try:
            import pycolmap
        except ImportError as error:
            raise EstimatorError('the COLMAP baseline needs pycolmap (pip install --no-deps '
                                 f'pycolmap==4.2.1): {error}') from error
        self.pycolmap = pycolmap

    def estimate(self, view_set: ViewSetInput) -> EstimationResult:
        if view_set.K is None:
            raise EstimatorError('the COLMAP baseline needs known intrinsics')
        pycolmap = self.pycolmap
        start = time.perf_counter()
        images = view_set.image_list()
        num = len(images)
        K = np.broadcast_to(np.asarray(view_set.K, dtype=np.float64), (num, 3, 3))
        R = np.repeat(np.eye(3)[None], num, axis=0)
        t = np.zeros((num, 3))
        sources = [POSE_SOURCE_UNREGISTERED] * num
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder)
            image_dir = root / 'images'
            image_dir.mkdir()
            database = root / 'database.db'
            names = [f'{k:02d}.png' for k in range(num)]
            for k, (name, image) in enumerate(zip(names, images, strict=True)):
                cv2.imwrite(str(image_dir / name), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
                reader = pycolmap.ImageReaderOptions()
                reader.camera_model = 'PINHOLE'
                reader.camera_params = ','.join(
                    str(v) for v in (K[k, 0, 0], K[k, 1, 1], K[k, 0, 2], K[k, 1, 2]))
                pycolmap.extract_features(database, image_dir, image_names=[name],
                                          camera_mode=pycolmap.CameraMode.PER_IMAGE,
                                          reader_options=reader,
                                          device=pycolmap.Device.cpu)
            pycolmap.match_exhaustive(database, device=pycolmap.Device.cpu)
            options = pycolmap.IncrementalPipelineOptions()
            options.ba_refine_focal_length = False
            options.ba_refine_principal_point = False
            options.ba_refine_extra_params = False
            options.mapper.abs_pose_refine_focal_length = False
            options.mapper.abs_pose_refine_extra_params = False
            if self.sparse:
                for key, value in SPARSE_MAPPER.items():
                    setattr(options.mapper, key, value)
            output = root / 'sparse'
            output.mkdir()
            models = pycolmap.incremental_mapping(database, image_dir, output, options)
            if models:
                largest = max(models.values(), key=lambda model: model.num_reg_images())
                for image in largest.images.values():
                    if not image.has_pose:
                        continue
                    k = names.index(image.name)
                    pose = image.cam_from_world()
                    R[k] = pose.rotation.matrix()
                    t[k] = pose.translation
                    sources[k] = POSE_SOURCE_COLMAP
        return EstimationResult.from_world_to_camera(
            R, t, K=np.array(K), timings_s={'total': time.perf_counter() - start},
            pose_sources=tuple(sources))


def make_colmap(options: EstimatorOptions) -> ColmapEstimator:
    """``raydiff-eval --estimator python:colmap_baseline:make_colmap [--option sparse=1]``."""
    unknown = set(options.extra) - {'sparse'}
    if unknown:
        raise EstimatorError(f'unknown options {sorted(unknown)}; known: sparse')
    return ColmapEstimator(sparse=str(options.extra.get('sparse', '0')).lower() in ('1', 'true'))
