"""The estimator node's ``/diagnostics``: one status built from the counters of every stage.

Status ``<node name>: pipeline`` (hardware id ``raydiff_ros``), level:

* ERROR while the estimator could not be loaded (the load error is the message);
* WARN when input or inference problems (failed, non-finite, timed-out sets) were counted
  since the previous message (the last problem is the message), when a camera sends images
  but no camera_info, or when the estimator has no matcher (``matcher_error``: e.g. ``fused``
  without its weight wheel estimates with the prior alone);
* OK otherwise. What fixed the cameras' poses never changes the level: a camera placed by the
  learned prior alone (pose source ``prior``) is an estimate, not a problem.

Values: estimator, mode, published counts, input counters, the scheduler's ``sets_*``
counters, each camera's keyframe counters (``camera_<i>_*``), ``input_errors_<kind>_<i>``, the
number of cameras of the newest published estimate per pose source (``cameras_<source>``, e.g.
``cameras_reference: 1``, ``cameras_verified_matches: 2``, ``cameras_prior: 1``), the rig
calibration's state and the inference device when known.
"""

from collections import Counter
from typing import Any, Mapping, Optional, Protocol

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node

from raydiff_ros.pipeline.estimates import ViewSetEstimate
from raydiff_ros.pipeline.keyframes import KeyframeBuffer
from raydiff_ros.pipeline.scheduler import InferenceScheduler
from raydiff_ros.ros.parameters import parameter_reader

DIAGNOSTIC_HARDWARE_ID = 'raydiff_ros'
DIAGNOSTICS_TOPIC = '/diagnostics'
#: Longest problem text kept for the diagnostics message.
MAX_ERROR_TEXT = 200
#: Log a problem of one kind at most this often, seconds.
LOG_THROTTLE_S = 5.0
SCHEDULER_COUNTERS = (
    'scheduled',
    'estimated',
    'dropped',
    'failed',
    'rejected_nonfinite',
    'timed_out',
    'abandoned_running',
    'pending',
    'last_latency_s',
    'mean_latency_s',
)
CAMERA_COUNTERS = ('received', 'kept', 'rejected_blur', 'rejected_similar', 'stored')


class InputState(Protocol):
    """What the diagnostics read of the node's inputs (``node_inputs.CameraInputs``)."""

    buffer: Optional[KeyframeBuffer]
    relocalization_requested: bool
    images_received: int
    callback_cpu_s: float
    intrinsics: Mapping[int, Any]
    errors: Mapping[str, int]


class CalibrationState(Protocol):
    """What the diagnostics read of the rig calibration (``node_calibration.NodeCalibration``)."""

    enabled: bool
    status: str


class NodeDiagnostics:
    """Problems and published counts of the node, and the ``/diagnostics`` they make.

    Attributes:
        last_error: the newest input or inference problem (at most ``MAX_ERROR_TEXT`` chars).
        published: messages published so far: ``view_sets`` and ``seeds``.
        pose_sources: cameras of the newest published estimate per pose source (what fixed
            their poses), in the order the sources first appear; empty before any estimate.
    """

    def __init__(self, node: Node) -> None:
        self._node = node
        self._publisher = None
        self.last_error = ''
        self.published = {'view_sets': 0, 'seeds': 0}
        self.pose_sources: dict[str, int] = {}
        self._errors_reported: dict[str, int] = {}
        self._failed_reported = 0

    def note_problem(self, text: str) -> str:
        """Keep ``text`` (shortened) as the last problem and return it, for the caller to log."""
        self.last_error = text[:MAX_ERROR_TEXT]
        return self.last_error

    def note_estimate(self, estimate: ViewSetEstimate) -> None:
        """Count the cameras of a published estimate per pose source (replaces the counts of
        the previous one; called on the scheduler's worker thread)."""
        self.pose_sources = dict(Counter(camera.pose_source for camera in estimate.cameras))

    def create_publisher(self) -> None:
        self._publisher = self._node.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, 10)

    def publish(
        self,
        inputs: InputState,
        estimator: Any,
        scheduler: Optional[InferenceScheduler],
        calibration: Optional[CalibrationState],
        load_error: str,
    ) -> DiagnosticArray:
        """Publish (and return) one status from the node's inputs, estimator, scheduler and
        calibration."""
        param = parameter_reader(self._node)
        num_cameras = param('num_cameras')
        buffer = inputs.buffer
        values = {
            'estimator': param('estimator'),
            'mode': param('mode'),
            'view_sets_published': self.published['view_sets'],
            'relocalization_seeds_published': self.published['seeds'],
            'relocalization_requested': inputs.relocalization_requested,
            'images_received': inputs.images_received,
            'image_callbacks_cpu_s': round(inputs.callback_cpu_s, 4),
        }
        if calibration is not None and calibration.enabled:
            values['calibration'] = calibration.status or 'no rig view set yet'
        device = getattr(getattr(estimator, 'base', estimator), 'device', None)
        if device is not None:
            values['device'] = str(device)
        matcher_error = getattr(estimator, 'matcher_error', '')
        if matcher_error:
            values['matcher_error'] = matcher_error
        if scheduler is not None:
            counters = scheduler.counters()
            for field in SCHEDULER_COUNTERS:
                values[f'sets_{field}'] = getattr(counters, field)
        if buffer is not None:
            for index in range(num_cameras):
                counters = buffer.counters(index)
                for field in CAMERA_COUNTERS:
                    values[f'camera_{index}_{field}'] = getattr(counters, field)
                values[f'camera_{index}_has_camera_info'] = index in inputs.intrinsics
        values.update({f'input_errors_{key}': count for key, count in inputs.errors.items()})
        values.update({f'cameras_{source}': count for source, count in self.pose_sources.items()})
        failed = sum(values.get(f'sets_{field}', 0)
                     for field in ('failed', 'rejected_nonfinite', 'timed_out'))
        missing_info = buffer is not None and any(
            buffer.counters(i).received and i not in inputs.intrinsics for i in range(num_cameras)
        )
        status = DiagnosticStatus(
            name=f'{self._node.get_name()}: pipeline', hardware_id=DIAGNOSTIC_HARDWARE_ID
        )
        if load_error:
            status.level, status.message = DiagnosticStatus.ERROR, load_error
        elif inputs.errors != self._errors_reported or failed != self._failed_reported:
            # New input or inference problems since the last diagnostics message.
            status.level, status.message = DiagnosticStatus.WARN, self.last_error
        elif matcher_error:
            status.level = DiagnosticStatus.WARN
            status.message = f'no matcher, estimates are the prior alone: {matcher_error}'
        elif missing_info:
            status.level = DiagnosticStatus.WARN
            status.message = 'no camera_info for some cameras: intrinsics are estimated'
        else:
            status.level, status.message = DiagnosticStatus.OK, 'ok'
        self._errors_reported, self._failed_reported = dict(inputs.errors), failed
        status.values = [KeyValue(key=key, value=str(value)) for key, value in values.items()]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self._node.get_clock().now().to_msg()
        self._publisher.publish(array)
        return array
