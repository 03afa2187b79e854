"""The raydiff_ros estimator node (managed / lifecycle).

Inputs (``node_inputs``): ``image_<i>`` (or ``image_<i>/compressed``) and ``camera_info_<i>``
of camera i (remap them); ``~/lost`` and ``~/request_relocalization``, which ask for a
relocalization seed; the map poses on ``map_pose_topic``.

Outputs: ``~/view_set_estimate`` (raydiff_ros/ViewSetEstimate), ``~/pose_graph``
(raydiff_ros/PoseGraph), ``~/relocalization_seed`` (geometry_msgs/PoseWithCovarianceStamped;
remap to /initialpose), ``/tf_static`` (rig sets) or ``/tf`` (temporal sets) under
``frame_prefix``, ``/diagnostics`` (``node_diagnostics``); rig calibration and its service
``~/save_calibration`` (``node_calibration``). Parameters: ``node_config`` and the pipeline
stage configs.

Lifecycle: configure loads the model and starts the inference worker; activate subscribes;
deactivate unsubscribes; cleanup stops the worker, frees the model (and GPU memory) and
destroys the publishers and services configure made. With ``autostart`` (default) the node
configures and activates itself. ``/diagnostics`` is published in every state (unconfigured:
why configure failed, as an ERROR).

Faults of the estimator never stop the node and never publish anything of the failed set: an
exception, a non-finite result, a set past ``inference_deadline_s`` (abandoned: see
``pipeline/scheduler.py``) or an out-of-memory error (the set's keyframes are dropped, the
garbage collected and the CUDA cache emptied) are logged and reported on ``/diagnostics``
(WARN), and the next sets are estimated as usual.

Threads: subscription callbacks only decode and buffer frames; a timer forms view sets and
queues them; inference runs in the scheduler's worker thread and publishes from there; the
executor (single-threaded: see ``lifecycle_main.py``) keeps serving parameters and services
meanwhile.
"""

import gc
import sys
import threading
import traceback
from typing import Any, Optional

from geometry_msgs.msg import PoseWithCovarianceStamped
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.lifecycle import Node as LifecycleNode
from rclpy.lifecycle import State, TransitionCallbackReturn

from raydiff_ros.estimation import EstimatorError
from raydiff_ros.msg import PoseGraph as PoseGraphMsg
from raydiff_ros.msg import ViewSetEstimate as ViewSetEstimateMsg
from raydiff_ros.pipeline.estimates import summarize_estimate
from raydiff_ros.pipeline.keyframes import KeyframeBuffer
from raydiff_ros.pipeline.pose_graph import build_pose_graph
from raydiff_ros.pipeline.scheduler import InferenceScheduler, InferenceTimeoutError
from raydiff_ros.pipeline.view_sets import ViewSetBuilder, ViewSetMode
from raydiff_ros.ros import messages
from raydiff_ros.ros.estimator_plugins import build_estimator
from raydiff_ros.ros.lifecycle_main import run_lifecycle_node
from raydiff_ros.ros.node_calibration import NodeCalibration
from raydiff_ros.ros.node_diagnostics import LOG_THROTTLE_S, NodeDiagnostics
from raydiff_ros.ros.node_inputs import CameraInputs
from raydiff_ros.ros.node_parameters import (
    ALL_PARAMETERS,
    PIPELINE_PARAMETERS,
    check_node_values,
    pipeline_config,
)
from raydiff_ros.ros.parameters import declare_parameters
from raydiff_ros.ros.qos import ESTIMATE_QOS
from raydiff_ros.ros.tf_output import StaticTransformPublisher, TransformPublisher

NODE_NAME = 'raydiff_estimator'


def is_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` is a MemoryError or torch's CUDA out-of-memory error."""
    if isinstance(error, MemoryError):
        return True
    torch = sys.modules.get('torch')
    oom = getattr(getattr(torch, 'cuda', None), 'OutOfMemoryError', None)
    return isinstance(oom, type) and isinstance(error, oom)


def free_memory() -> None:
    """Collect garbage and empty the CUDA cache (when torch is loaded and CUDA available)."""
    gc.collect()
    torch = sys.modules.get('torch')
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


class EstimatorNode(LifecycleNode):
    """Keyframes from many cameras -> view sets -> ray diffusion -> TF, pose graph, seeds."""

    def __init__(self, node_name: str = NODE_NAME, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self._config = pipeline_config(
            declare_parameters(self, ALL_PARAMETERS, check_node_values))
        self._lock = threading.Lock()
        self._estimator = None
        self._scheduler: Optional[InferenceScheduler] = None
        self._buffer: Optional[KeyframeBuffer] = None
        self._builder: Optional[ViewSetBuilder] = None
        self._calibration: Optional[NodeCalibration] = None
        self._node_timers = []
        self._sequence = 0
        self._load_error = ''
        self._diagnostics = NodeDiagnostics(self)
        self._inputs = CameraInputs(self, self._lock, self._diagnostics)
        self._timer_group = MutuallyExclusiveCallbackGroup()
        self._configured_entities: list = []
        self._diagnostics.create_publisher()
        self._diagnostics_timer = self.create_timer(
            self.param('diagnostics_period_s'), self._publish_diagnostics,
            callback_group=self._timer_group)

    def param(self, name: str) -> Any:
        return self.get_parameter(name).value

    # -- lifecycle ----------------------------------------------------------------------------

    def on_configure(self, state: State) -> TransitionCallbackReturn:
        self._config = pipeline_config({s.name: self.param(s.name) for s in PIPELINE_PARAMETERS})
        if not self._build_estimator():
            return TransitionCallbackReturn.FAILURE
        entities_before = self._entities()
        num_cameras = self.param('num_cameras')
        self._buffer = KeyframeBuffer(num_cameras, self._config.keyframes)
        self._inputs.configure(self._buffer, self._config.camera_info)
        self._builder = ViewSetBuilder(self._buffer, self._config.view_sets)
        self._scheduler = InferenceScheduler(
            self._run_inference,
            self._publish_result,
            self._on_inference_error,
            self._config.scheduler,
        )
        self._estimate_pub = self.create_lifecycle_publisher(
            ViewSetEstimateMsg, '~/view_set_estimate', ESTIMATE_QOS
        )
        self._graph_pub = self.create_lifecycle_publisher(
            PoseGraphMsg, '~/pose_graph', ESTIMATE_QOS
        )
        self._seed_pub = self.create_lifecycle_publisher(
            PoseWithCovarianceStamped, '~/relocalization_seed', 10
        )
        self._tf_static = StaticTransformPublisher(self)
        self._tf = TransformPublisher(self)
        self._calibration = NodeCalibration(self, self._tf_static, num_cameras)
        self._configured_entities = [e for e in self._entities() if e not in entities_before]
        self._scheduler.start()
        matcher_error = getattr(self._estimator, 'matcher_error', '')
        if matcher_error:
            self.get_logger().warning(f'no matcher, estimates are the prior alone: '
                                      f'{matcher_error}')
        self.get_logger().info(
            f'configured: {num_cameras} cameras, mode {self.param("mode")}, estimator '
            f'{self.param("estimator")}'
        )
        return TransitionCallbackReturn.SUCCESS

    def _entities(self) -> list:
        """The node's publishers and services now."""
        return [*self.publishers, *self.services]

    def _build_estimator(self) -> bool:
        """Build the estimator from the parameters; False (reason logged and kept) on failure."""
        try:
            self._estimator = build_estimator(
                self.param('estimator'), self.param('model_dir'), self.param('device'),
                self.param('dtype'), self.param('num_samples'), self.param('seed'),
                self.param('refinement'), self.param('estimator_options'))
        except EstimatorError as error:
            self._load_error = str(error)
            self.get_logger().error(f'configure failed: {error}')
            return False
        self._load_error = ''
        return True

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        self._inputs.subscribe()
        self._node_timers = [self.create_timer(
            self.param('schedule_period_s'), self._schedule, callback_group=self._timer_group)]
        return super().on_activate(state)

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        self._inputs.unsubscribe()
        for timer in self._node_timers:
            self.destroy_timer(timer)
        self._node_timers = []
        return super().on_deactivate(state)

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        self.release()
        self._destroy_configured_entities()
        return TransitionCallbackReturn.SUCCESS

    def _destroy_configured_entities(self) -> None:
        """Destroy the publishers and services configure made (none leak over cycles)."""
        for entity in self._configured_entities:
            if entity in self._managed_entities:
                self.destroy_lifecycle_publisher(entity)
            elif entity in self.services:
                self.destroy_service(entity)
            else:
                self.destroy_publisher(entity)
        self._configured_entities = []
        self._calibration = None

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        self.release()
        return TransitionCallbackReturn.SUCCESS

    def release(self) -> None:
        """Stop the worker, drop the estimator and the keyframes, free GPU memory."""
        if self._scheduler is not None:
            self._scheduler.stop()
        self._scheduler = None
        self._estimator = None
        if self._buffer is not None:
            self._buffer.clear()
        free_memory()

    # -- scheduling (timer) and inference (worker thread) -------------------------------------

    def _schedule(self) -> None:
        with self._lock:
            if self._inputs.relocalization_due():
                view_set = self._builder.next_relocalization_set()
                if view_set is not None:
                    self._inputs.relocalization_requested = False
                    self._submit(view_set)
            if self.param('mode') == 'rig':
                view_set = self._builder.next_rig_set()
            else:
                view_set = self._builder.next_temporal_set()
        if view_set is not None:
            self._submit(view_set)

    def _submit(self, view_set) -> None:
        """Queue a set for the worker; say when some of its cameras have no intrinsics."""
        unknown = [c for c, K in zip(view_set.camera_indices, view_set.K, strict=True)
                   if K is None]
        if unknown:
            self.get_logger().warning(
                f'cameras {unknown} have no valid CameraInfo yet: this set goes to the '
                'estimator without intrinsics, so it guesses those of every view (far less '
                'accurate; check the camera_info topics)',
                throttle_duration_sec=LOG_THROTTLE_S)
        self._scheduler.submit(view_set)

    def _run_inference(self, view_set):
        result = self._estimator.estimate(view_set.estimation_input())
        return summarize_estimate(view_set, result, self._config.scale,
                                  self._config.uncertainty, self._config.relocalization)

    def _on_inference_error(self, view_set, error: BaseException) -> None:
        """Report a set that gave no estimate (worker thread); free memory after an OOM."""
        if is_out_of_memory(error):
            if error.__traceback__ is not None:  # the frames hold the set's tensors
                traceback.clear_frames(error.__traceback__)
            dropped = self._buffer.discard(view_set.keyframe_ids) if self._buffer else 0
            free_memory()
            text = self._diagnostics.note_problem(
                f'inference out of memory: {type(error).__name__}: {error}; dropped the set '
                f'({dropped} keyframes) and freed cached memory')
            self.get_logger().error(text, throttle_duration_sec=LOG_THROTTLE_S)
            return
        if isinstance(error, InferenceTimeoutError):
            deadline = self._config.scheduler.inference_deadline_s
            text = f'inference timed out (inference_deadline_s {deadline:g}): {error}'
        else:
            text = f'inference failed: {type(error).__name__}: {error}'
        self.get_logger().warning(self._diagnostics.note_problem(text),
                                  throttle_duration_sec=LOG_THROTTLE_S)

    def _publish_result(self, view_set, estimate, latency_s: float) -> None:
        prefix = self.param('frame_prefix')
        frames = messages.output_frames(view_set, prefix)
        self._sequence += 1
        self._estimate_pub.publish(
            messages.view_set_estimate_msg(
                estimate, view_set, frames, self._sequence, latency_s, self.param('estimator')
            )
        )
        calibrated = self._calibration.update(view_set, estimate)
        if self.param('publish_tf') and not calibrated:
            transforms = messages.transforms_msg(estimate, frames)
            if view_set.mode == ViewSetMode.RIG:
                self._tf_static.send(transforms)
            elif view_set.mode == ViewSetMode.TEMPORAL:
                self._tf.send(transforms)
        graph = build_pose_graph(
            estimate.reference_T_cameras,
            estimate.reference_T_camera_samples,
            view_set.stamps_ns,
            view_set.camera_indices,
            view_set.keyframe_ids,
            frames[0],
            self._config.pose_graph,
            self._config.uncertainty,
            scale_known=estimate.metric,
        )
        self._graph_pub.publish(messages.pose_graph_msg(graph))
        if estimate.relocalization is not None:
            self._seed_pub.publish(
                messages.relocalization_seed_msg(estimate, view_set, self.param('map_frame'))
            )
            self._diagnostics.published['seeds'] += 1
        self._diagnostics.published['view_sets'] += 1
        self._diagnostics.note_estimate(estimate)

    def _publish_diagnostics(self) -> None:
        self._diagnostics.publish(
            self._inputs, self._estimator, self._scheduler, self._calibration, self._load_error
        )


def main(args: Optional[list[str]] = None) -> int:
    """The ``estimator_node`` executable (see ``lifecycle_main``)."""
    return run_lifecycle_node(EstimatorNode, NODE_NAME, args)


if __name__ == '__main__':
    sys.exit(main())
