"""The raydiff_ros estimator node (managed / lifecycle).

Inputs (camera i of ``num_cameras``; remap them): ``image_<i>`` (sensor_msgs/Image) or
``image_<i>/compressed`` (sensor_msgs/CompressedImage), ``camera_info_<i>``
(sensor_msgs/CameraInfo), ``~/lost`` (std_msgs/Bool: true asks for a relocalization seed for
the next keyframe that has no map pose), and optionally ``map_pose_topic``
(geometry_msgs/PoseStamped of a camera's optical frame in the map while localized).

Outputs: ``~/view_set_estimate`` (raydiff_ros/ViewSetEstimate), ``~/pose_graph``
(raydiff_ros/PoseGraph), ``~/relocalization_seed`` (geometry_msgs/PoseWithCovarianceStamped;
remap to /initialpose), ``/tf_static`` (rig sets) or ``/tf`` (temporal sets) under
``frame_prefix``, ``/diagnostics``. Service ``~/request_relocalization`` (std_srvs/Trigger).

Lifecycle: configure loads the model and starts the inference worker; activate subscribes;
deactivate unsubscribes; cleanup stops the worker and frees the model (and GPU memory). With
``autostart`` (default) the node configures and activates itself.

Threads: subscription callbacks only decode and buffer frames; a timer forms view sets and
queues them; inference runs in the scheduler's worker thread and publishes from there; the
executor (multi-threaded) keeps serving parameters and services meanwhile.
"""

from collections import deque
import gc
from pathlib import Path
import sys
import threading
import time
from typing import Any, Optional

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped, PoseWithCovarianceStamped
import numpy as np
import rclpy
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.lifecycle import Node as LifecycleNode
from rclpy.lifecycle import State, TransitionCallbackReturn
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Bool
from std_srvs.srv import Trigger

from raydiff_ros.calibration.aggregation import CalibrationError, RigCalibrator
from raydiff_ros.calibration.export import (
    write_extrinsics_yaml,
    write_static_tf_launch,
    write_urdf_snippet,
)
from raydiff_ros.msg import PoseGraph as PoseGraphMsg
from raydiff_ros.msg import ViewSetEstimate as ViewSetEstimateMsg
from raydiff_ros.pipeline.camera_info import CameraInfoError, intrinsics_from_camera_info
from raydiff_ros.pipeline.estimates import estimate_samples, summarize_estimate
from raydiff_ros.pipeline.image_decoding import (
    ImageDecodingError,
    decode_compressed_image,
    decode_raw_image,
)
from raydiff_ros.pipeline.keyframes import KeyframeBuffer, KeyframeError
from raydiff_ros.pipeline.pose_graph import build_pose_graph
from raydiff_ros.pipeline.scheduler import InferenceScheduler
from raydiff_ros.pipeline.view_sets import ViewSetBuilder, ViewSetMode
from raydiff_ros.refinement.selection import RefinementError
from raydiff_ros.ros import messages
from raydiff_ros.ros.conversions import pose_to_matrix, transform_stamped
from raydiff_ros.ros.estimator_plugins import EstimatorLoadError, build_estimator
from raydiff_ros.ros.node_parameters import (
    ALL_PARAMETERS,
    PIPELINE_PARAMETERS,
    pipeline_config,
)
from raydiff_ros.ros.parameters import declare_parameters
from raydiff_ros.ros.qos import ESTIMATE_QOS, SENSOR_QOS
from raydiff_ros.ros.tf_output import StaticTransformPublisher, TransformPublisher

NODE_NAME = 'raydiff_estimator'
MAP_POSE_HISTORY = 200
DIAGNOSTIC_HARDWARE_ID = 'raydiff_ros'
DIAGNOSTICS_TOPIC = '/diagnostics'
MAX_ERROR_TEXT = 200
#: Log an input problem of one kind at most this often, seconds.
LOG_THROTTLE_S = 5.0
CALIBRATION_FILES = {'yaml': 'extrinsics.yaml', 'urdf': 'rig.urdf.xacro',
                     'launch': 'static_transforms.launch.py'}


class EstimatorNode(LifecycleNode):
    """Keyframes from many cameras -> view sets -> ray diffusion -> TF, pose graph, seeds."""

    def __init__(self, node_name: str = NODE_NAME, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self._config = pipeline_config(declare_parameters(self, ALL_PARAMETERS, pipeline_config))
        self._lock = threading.Lock()
        self._estimator = None
        self._scheduler: Optional[InferenceScheduler] = None
        self._buffer: Optional[KeyframeBuffer] = None
        self._builder: Optional[ViewSetBuilder] = None
        self._input_subscriptions = []
        self._node_timers = []
        self._intrinsics: dict[int, Any] = {}
        self._map_poses: deque = deque(maxlen=MAP_POSE_HISTORY)
        self._relocalization_requested = False
        self._sequence = 0
        self._input_errors: dict[str, int] = {}
        self._last_error = ''
        self._errors_reported: dict[str, int] = {}
        self._failed_reported = 0
        self._load_error = ''
        self._published = {'view_sets': 0, 'seeds': 0}
        self._calibrator: Optional[RigCalibrator] = None
        self._calibration_lock = threading.Lock()
        self._calibration_frames: dict[int, str] = {}
        self._calibration_status = ''
        self._callback_cpu_s = 0.0
        self._images_received = 0
        self._input_group = MutuallyExclusiveCallbackGroup()
        self._timer_group = MutuallyExclusiveCallbackGroup()

    # -- parameters ---------------------------------------------------------------------------

    def param(self, name: str) -> Any:
        return self.get_parameter(name).value

    # -- lifecycle ----------------------------------------------------------------------------

    def on_configure(self, state: State) -> TransitionCallbackReturn:
        self._config = pipeline_config({spec.name: self.param(spec.name)
                                        for spec in PIPELINE_PARAMETERS})
        try:
            self._estimator = build_estimator(
                self.param('estimator'), self.param('model_dir'), self.param('device'),
                self.param('dtype'), self.param('num_samples'), self.param('seed'),
                self.param('refinement'))
        except (EstimatorLoadError, RefinementError) as error:
            self._load_error = str(error)
            self.get_logger().error(f'configure failed: {error}')
            return TransitionCallbackReturn.FAILURE
        self._load_error = ''
        num_cameras = self.param('num_cameras')
        self._buffer = KeyframeBuffer(num_cameras, self._config.keyframes)
        self._builder = ViewSetBuilder(self._buffer, self._config.view_sets)
        self._scheduler = InferenceScheduler(self._run_inference, self._publish_result,
                                             self._on_inference_error, self._config.scheduler)
        self._estimate_pub = self.create_lifecycle_publisher(
            ViewSetEstimateMsg, '~/view_set_estimate', ESTIMATE_QOS)
        self._graph_pub = self.create_lifecycle_publisher(PoseGraphMsg, '~/pose_graph',
                                                          ESTIMATE_QOS)
        self._seed_pub = self.create_lifecycle_publisher(
            PoseWithCovarianceStamped, '~/relocalization_seed', 10)
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, 10)
        self._tf_static = StaticTransformPublisher(self)
        self._tf = TransformPublisher(self)
        self._service = self.create_service(Trigger, '~/request_relocalization',
                                            self._on_request_relocalization)
        self._save_service = self.create_service(Trigger, '~/save_calibration',
                                                 self._on_save_calibration)
        self._calibrator = None
        if self.param('calibration_enabled'):
            self._calibrator = RigCalibrator(num_cameras)
            if self.param('scale_source') == 'known_baseline':
                self._calibrator.scale_from_baseline(self.param('baseline_camera_a'),
                                                     self.param('baseline_camera_b'),
                                                     self.param('baseline_m'))
        self._scheduler.start()
        self.get_logger().info(
            f'configured: {num_cameras} cameras, mode {self.param("mode")}, estimator '
            f'{self.param("estimator")}')
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        qos = SENSOR_QOS if self.param('image_qos') == 'sensor_data' else QoSProfile(
            depth=5, reliability=ReliabilityPolicy.RELIABLE)
        compressed = self.param('image_transport') == 'compressed'
        for index in range(self.param('num_cameras')):
            topic = f'image_{index}' + ('/compressed' if compressed else '')
            image_type = CompressedImage if compressed else Image
            self._input_subscriptions.append(self.create_subscription(
                image_type, topic, lambda msg, i=index: self._on_image(i, msg), qos,
                callback_group=self._input_group))
            self._input_subscriptions.append(self.create_subscription(
                CameraInfo, f'camera_info_{index}',
                lambda msg, i=index: self._on_camera_info(i, msg), qos,
                callback_group=self._input_group))
        self._input_subscriptions.append(self.create_subscription(
            Bool, '~/lost', self._on_lost, 10, callback_group=self._input_group))
        if self.param('map_pose_topic'):
            self._input_subscriptions.append(self.create_subscription(
                PoseStamped, self.param('map_pose_topic'), self._on_map_pose, 50,
                callback_group=self._input_group))
        self._node_timers.append(self.create_timer(self.param('schedule_period_s'), self._schedule,
                                              callback_group=self._timer_group))
        self._node_timers.append(self.create_timer(self.param('diagnostics_period_s'),
                                              self._publish_diagnostics,
                                              callback_group=self._timer_group))
        return super().on_activate(state)

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        for subscription in self._input_subscriptions:
            self.destroy_subscription(subscription)
        for timer in self._node_timers:
            self.destroy_timer(timer)
        self._input_subscriptions, self._node_timers = [], []
        return super().on_deactivate(state)

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def _release(self) -> None:
        if self._scheduler is not None:
            self._scheduler.stop()
        self._scheduler = None
        self._estimator = None
        if self._buffer is not None:
            self._buffer.clear()
        gc.collect()
        torch = sys.modules.get('torch')
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()

    # -- inputs (executor thread; cheap) ------------------------------------------------------

    def _input_problem(self, kind: str, camera: int, error: Exception) -> None:
        key = f'{kind}_{camera}'
        self._input_errors[key] = self._input_errors.get(key, 0) + 1
        self._last_error = f'camera {camera} {kind}: {error}'[:MAX_ERROR_TEXT]
        self.get_logger().warning(self._last_error, throttle_duration_sec=LOG_THROTTLE_S)

    def _on_camera_info(self, index: int, msg: CameraInfo) -> None:
        try:
            self._intrinsics[index] = intrinsics_from_camera_info(
                list(msg.k), msg.width, msg.height, list(msg.p), list(msg.d),
                msg.distortion_model, self._config.camera_info)
        except CameraInfoError as error:
            self._intrinsics.pop(index, None)
            self._input_problem('camera_info', index, error)

    def _on_image(self, index: int, msg) -> None:
        start = time.thread_time()
        try:
            self._process_image(index, msg)
        finally:
            self._callback_cpu_s += time.thread_time() - start
            self._images_received += 1

    def _process_image(self, index: int, msg) -> None:
        try:
            if isinstance(msg, CompressedImage):
                image = decode_compressed_image(msg.format, bytes(msg.data))
            else:
                image = decode_raw_image(msg.encoding, msg.height, msg.width, msg.step,
                                         bool(msg.is_bigendian), bytes(msg.data))
        except ImageDecodingError as error:
            self._input_problem('image', index, error)
            return
        stamp_ns = Time.from_msg(msg.header.stamp).nanoseconds
        try:
            with self._lock:
                self._buffer.offer(index, stamp_ns, image, msg.header.frame_id,
                                   self._intrinsics.get(index), self._map_pose_at(index, stamp_ns))
        except (KeyframeError, CameraInfoError) as error:
            self._input_problem('image', index, error)

    def _on_map_pose(self, msg: PoseStamped) -> None:
        if msg.header.frame_id and msg.header.frame_id != self.param('map_frame'):
            self._input_problem('map_pose', self.param('map_pose_camera'),
                                ValueError(f'pose in {msg.header.frame_id!r}, expected '
                                           f'{self.param("map_frame")!r}'))
            return
        stamp_ns = Time.from_msg(msg.header.stamp).nanoseconds
        map_T_camera = pose_to_matrix(msg.pose)
        self._map_poses.append((stamp_ns, map_T_camera))
        with self._lock:
            self._buffer.set_map_pose(self.param('map_pose_camera'), stamp_ns, map_T_camera)

    def _map_pose_at(self, index: int, stamp_ns: int) -> Optional[np.ndarray]:
        if index != self.param('map_pose_camera') or not self._map_poses:
            return None
        max_age_ns = self.param('map_pose_max_age_s') * 1e9
        stamp, pose = min(self._map_poses, key=lambda item: abs(item[0] - stamp_ns))
        return pose if abs(stamp - stamp_ns) <= max_age_ns else None

    def _on_lost(self, msg: Bool) -> None:
        if msg.data:
            self._relocalization_requested = True

    def _on_request_relocalization(self, request, response):
        self._relocalization_requested = True
        response.success = True
        response.message = 'relocalization requested: the next covering view set is estimated'
        return response

    # -- scheduling (timer) and inference (worker thread) -------------------------------------

    def _schedule(self) -> None:
        with self._lock:
            if self._relocalization_requested and self._has_lost_keyframe():
                view_set = self._builder.next_relocalization_set()
                if view_set is not None:
                    self._relocalization_requested = False
                    self._scheduler.submit(view_set)
            if self.param('mode') == 'rig':
                view_set = self._builder.next_rig_set()
            else:
                view_set = self._builder.next_temporal_set()
        if view_set is not None:
            self._scheduler.submit(view_set)

    def _has_lost_keyframe(self) -> bool:
        """Whether the newest keyframe of the localized camera has no map pose (a query)."""
        latest = self._buffer.latest(self.param('map_pose_camera'))
        return latest is not None and latest.map_T_camera is None

    def _run_inference(self, view_set):
        samples = estimate_samples(self._estimator, view_set)
        return summarize_estimate(view_set, samples, self._config.scale,
                                  self._config.uncertainty, self._config.relocalization)

    def _on_inference_error(self, view_set, error: BaseException) -> None:
        self._last_error = f'inference failed: {type(error).__name__}: {error}'[:MAX_ERROR_TEXT]
        self.get_logger().warning(self._last_error, throttle_duration_sec=LOG_THROTTLE_S)

    def _publish_result(self, view_set, estimate, latency_s: float) -> None:
        prefix = self.param('frame_prefix')
        frames = messages.output_frames(view_set, prefix)
        self._sequence += 1
        self._estimate_pub.publish(messages.view_set_estimate_msg(
            estimate, view_set, frames, self._sequence, latency_s, self.param('estimator')))
        calibrated = (self._calibrator is not None and view_set.mode == ViewSetMode.RIG
                      and self._update_calibration(view_set, estimate))
        if self.param('publish_tf') and not calibrated:
            transforms = messages.transforms_msg(estimate, frames)
            if view_set.mode == ViewSetMode.RIG:
                self._tf_static.send(transforms)
            elif view_set.mode == ViewSetMode.TEMPORAL:
                self._tf.send(transforms)
        graph = build_pose_graph(
            estimate.reference_T_cameras, estimate.reference_T_camera_samples,
            view_set.stamps_ns, view_set.camera_indices, view_set.keyframe_ids, frames[0],
            self._config.pose_graph, self._config.uncertainty, scale_known=estimate.metric)
        self._graph_pub.publish(messages.pose_graph_msg(graph))
        if estimate.relocalization is not None:
            self._seed_pub.publish(messages.relocalization_seed_msg(
                estimate, view_set, self.param('map_frame')))
            self._published['seeds'] += 1
        self._published['view_sets'] += 1

    # -- rig calibration (worker thread, and the save service) --------------------------------

    def _update_calibration(self, view_set, estimate) -> bool:
        """Add a rig estimate, re-solve, publish the calibrated rig on /tf_static."""
        for index, frame in zip(view_set.camera_indices, view_set.frame_ids, strict=True):
            self._calibration_frames[index] = frame or messages.FALLBACK_FRAME.format(
                index=index)
        try:
            with self._calibration_lock:
                self._calibrator.add_estimate(estimate)
                calibration = self._calibrator.solve()
        except CalibrationError as error:  # e.g. cameras not yet connected to camera 0
            self._calibration_status = f'not solved yet: {error}'[:MAX_ERROR_TEXT]
            return False
        report = calibration.convergence
        self._calibration_status = (
            f'{self._calibrator.num_view_sets} view sets, converged {report.converged}, '
            f'last change {report.rotation_change_deg:.3f} deg / '
            f'{report.translation_change_fraction:.4f} of the rig')
        if self.param('publish_tf'):
            prefix = self.param('frame_prefix')
            frames = self._frames_of(range(calibration.num_cameras))
            stamp = messages.stamp_msg(estimate.stamp_ns)
            self._tf_static.send([
                transform_stamped(calibration.rig_T_camera[k], prefix + frames[0],
                                  prefix + frames[k], stamp)
                for k in range(1, calibration.num_cameras)])
        return True

    def _frames_of(self, indices) -> list[str]:
        return [self._calibration_frames.get(k, messages.FALLBACK_FRAME.format(index=k))
                for k in indices]

    def _on_save_calibration(self, request, response):
        if self._calibrator is None:
            response.success = False
            response.message = 'calibration is disabled (set calibration_enabled: true)'
            return response
        try:
            with self._calibration_lock:
                calibration = self._calibrator.solve()
            folder = Path(self.param('calibration_output_dir'))
            folder.mkdir(parents=True, exist_ok=True)
            frames = self._frames_of(range(calibration.num_cameras))
            parent = self.param('calibration_parent_frame') or frames[0]
            write_extrinsics_yaml(calibration, folder / CALIBRATION_FILES['yaml'], frames,
                                  parent)
            write_urdf_snippet(calibration, folder / CALIBRATION_FILES['urdf'], frames, parent)
            write_static_tf_launch(calibration, folder / CALIBRATION_FILES['launch'], frames,
                                   parent)
        except (CalibrationError, OSError) as error:
            response.success = False
            response.message = f'calibration not saved: {error}'
            return response
        response.success = True
        response.message = (f'saved {", ".join(CALIBRATION_FILES.values())} in {folder} '
                            f'({self._calibration_status})')
        self.get_logger().info(response.message)
        return response

    # -- diagnostics ----------------------------------------------------------------------------

    def _publish_diagnostics(self) -> None:
        status = DiagnosticStatus(name=f'{self.get_name()}: pipeline',
                                  hardware_id=DIAGNOSTIC_HARDWARE_ID)
        values = {'estimator': self.param('estimator'), 'mode': self.param('mode'),
                  'view_sets_published': self._published['view_sets'],
                  'relocalization_seeds_published': self._published['seeds'],
                  'relocalization_requested': self._relocalization_requested,
                  'images_received': self._images_received,
                  'image_callbacks_cpu_s': round(self._callback_cpu_s, 4)}
        if self._calibrator is not None:
            values['calibration'] = self._calibration_status or 'no rig view set yet'
        engine = getattr(self._estimator, 'engine', None)
        if engine is not None:
            values['device'] = str(engine.device)
        if self._scheduler is not None:
            counters = self._scheduler.counters()
            for field in ('scheduled', 'estimated', 'dropped', 'failed', 'rejected_nonfinite',
                          'pending', 'last_latency_s', 'mean_latency_s'):
                values[f'sets_{field}'] = getattr(counters, field)
        if self._buffer is not None:
            for index in range(self.param('num_cameras')):
                counters = self._buffer.counters(index)
                for field in ('received', 'kept', 'rejected_blur', 'rejected_similar',
                              'stored'):
                    values[f'camera_{index}_{field}'] = getattr(counters, field)
                values[f'camera_{index}_has_camera_info'] = index in self._intrinsics
        values.update({f'input_errors_{key}': count for key, count in self._input_errors.items()})
        failed = values.get('sets_failed', 0) + values.get('sets_rejected_nonfinite', 0)
        missing_info = self._buffer is not None and any(
            self._buffer.counters(i).received and i not in self._intrinsics
            for i in range(self.param('num_cameras')))
        if self._load_error:
            status.level, status.message = DiagnosticStatus.ERROR, self._load_error
        elif self._input_errors != self._errors_reported or failed != self._failed_reported:
            # New input or inference problems since the last diagnostics message.
            status.level, status.message = DiagnosticStatus.WARN, self._last_error
        elif missing_info:
            status.level = DiagnosticStatus.WARN
            status.message = 'no camera_info for some cameras: intrinsics are estimated'
        else:
            status.level, status.message = DiagnosticStatus.OK, 'ok'
        self._errors_reported, self._failed_reported = dict(self._input_errors), failed
        status.values = [KeyValue(key=key, value=str(value)) for key, value in values.items()]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self._diagnostics_pub.publish(array)


def autostart(node: EstimatorNode) -> bool:
    """Configure and activate (what a lifecycle manager would do); False on failure."""
    if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
        return False
    return node.trigger_activate() == TransitionCallbackReturn.SUCCESS


def main(args: Optional[list[str]] = None) -> int:
    rclpy.init(args=args)
    try:
        node = EstimatorNode()
    except (ValueError, rclpy.exceptions.InvalidParameterValueException) as error:
        print(f'raydiff_estimator: invalid parameters: {error}', file=sys.stderr)
        rclpy.try_shutdown()
        return 2
    executor = MultiThreadedExecutor(num_threads=3)
    executor.add_node(node)
    if node.get_parameter('autostart').value and not autostart(node):
        node.get_logger().error('autostart failed: the node stays unconfigured; fix the '
                                'parameters and trigger configure again')
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node._release()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
