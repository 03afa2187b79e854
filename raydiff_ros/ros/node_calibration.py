"""Rig calibration in the estimator node, and its ``~/save_calibration`` service.

With ``calibration_enabled``, every rig estimate is added to one ``RigCalibrator``, which is
re-solved; the calibrated extrinsics ``rig_T_camera`` (rig frame = the optical frame of camera
0) replace the per-set transforms on ``/tf_static``, under ``frame_prefix``. The service
(std_srvs/Trigger) writes them into ``calibration_output_dir`` as ``extrinsics.yaml``,
``rig.urdf.xacro`` and ``static_transforms.launch.py``, expressed in
``calibration_parent_frame`` (empty: the first camera's optical frame). Each file is joined to
the folder with ``confined_path`` (a link there pointing out of the folder is refused, and the
writers replace a file rather than write through a link), and ``calibration_output_dir`` is
read-only: it is set at start-up, not by any participant on the ROS graph at run time.

Threads: estimates come from the inference worker, the service from the executor; the
calibrator is guarded by a lock.
"""

from pathlib import Path
import threading
from typing import Iterable

from rclpy.node import Node
from std_srvs.srv import Trigger

from raydiff_ros.calibration.aggregation import CalibrationError, RigCalibrator
from raydiff_ros.calibration.export import (
    confined_path,
    write_extrinsics_yaml,
    write_static_tf_launch,
    write_urdf_snippet,
)
from raydiff_ros.pipeline.estimates import ViewSetEstimate
from raydiff_ros.pipeline.view_sets import ViewSet, ViewSetMode
from raydiff_ros.ros import messages
from raydiff_ros.ros.conversions import transform_stamped
from raydiff_ros.ros.node_diagnostics import MAX_ERROR_TEXT
from raydiff_ros.ros.parameters import parameter_reader
from raydiff_ros.ros.tf_output import StaticTransformPublisher

CALIBRATION_FILES = {
    'yaml': 'extrinsics.yaml',
    'urdf': 'rig.urdf.xacro',
    'launch': 'static_transforms.launch.py',
}


class NodeCalibration:
    """The node's rig calibration (a calibrator only with ``calibration_enabled``).

    Attributes:
        status: how far the calibration got, for the diagnostics ('' before any rig set).
    """

    def __init__(self, node: Node, tf_static: StaticTransformPublisher, num_cameras: int) -> None:
        self._node = node
        self._param = parameter_reader(node)
        self._tf_static = tf_static
        self._lock = threading.Lock()
        self._frames: dict[int, str] = {}
        self.status = ''
        self._calibrator = None
        if self._param('calibration_enabled'):
            self._calibrator = RigCalibrator(num_cameras)
            if self._param('scale_source') == 'known_baseline':
                self._calibrator.scale_from_baseline(
                    self._param('baseline_camera_a'),
                    self._param('baseline_camera_b'),
                    self._param('baseline_m'),
                )
        self._service = node.create_service(Trigger, '~/save_calibration', self._on_save)

    @property
    def enabled(self) -> bool:
        return self._calibrator is not None

    def update(self, view_set: ViewSet, estimate: ViewSetEstimate) -> bool:
        """Add a rig estimate, re-solve, publish the calibrated rig on /tf_static.

        Returns whether the calibration was solved; False (the caller publishes the set's own
        transforms) also when calibration is disabled or the set is not a rig set.
        """
        if self._calibrator is None or view_set.mode != ViewSetMode.RIG:
            return False
        for index, frame in zip(view_set.camera_indices, view_set.frame_ids, strict=True):
            self._frames[index] = frame or messages.FALLBACK_FRAME.format(index=index)
        try:
            with self._lock:
                self._calibrator.add_estimate(estimate)
                calibration = self._calibrator.solve()
        except CalibrationError as error:  # e.g. cameras not yet connected to camera 0
            self.status = f'not solved yet: {error}'[:MAX_ERROR_TEXT]
            return False
        report = calibration.convergence
        self.status = (
            f'{self._calibrator.num_view_sets} view sets, converged {report.converged}, '
            f'last change {report.rotation_change_deg:.3f} deg / '
            f'{report.translation_change_fraction:.4f} of the rig'
        )
        if self._param('publish_tf'):
            prefix = self._param('frame_prefix')
            frames = self._frames_of(range(calibration.num_cameras))
            stamp = messages.stamp_msg(estimate.stamp_ns)
            self._tf_static.send(
                [
                    transform_stamped(
                        calibration.rig_T_camera[k], prefix + frames[0], prefix + frames[k], stamp
                    )
                    for k in range(1, calibration.num_cameras)
                ]
            )
        return True

    def _frames_of(self, indices: Iterable[int]) -> list[str]:
        return [self._frames.get(k, messages.FALLBACK_FRAME.format(index=k)) for k in indices]

    def _on_save(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        if self._calibrator is None:
            response.success = False
            response.message = 'calibration is disabled (set calibration_enabled: true)'
            return response
        try:
            with self._lock:
                calibration = self._calibrator.solve()
            folder = Path(self._param('calibration_output_dir'))
            folder.mkdir(parents=True, exist_ok=True)
            frames = self._frames_of(range(calibration.num_cameras))
            parent = self._param('calibration_parent_frame') or frames[0]
            paths = {kind: confined_path(folder, name) for kind, name in CALIBRATION_FILES.items()}
            write_extrinsics_yaml(calibration, paths['yaml'], frames, parent)
            write_urdf_snippet(calibration, paths['urdf'], frames, parent)
            write_static_tf_launch(calibration, paths['launch'], frames, parent)
        except (CalibrationError, OSError) as error:
            response.success = False
            response.message = f'calibration not saved: {error}'
            return response
        response.success = True
        response.message = (
            f'saved {", ".join(CALIBRATION_FILES.values())} in {folder} ({self.status})'
        )
        self._node.get_logger().info(response.message)
        return response
