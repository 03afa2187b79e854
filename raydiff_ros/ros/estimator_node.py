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
deactivate unsubscribes; cleanup stops the worker and frees the model (and GPU memory). With
``autostart`` (default) the node configures and activates itself.

Threads: subscription callbacks only decode and buffer frames; a timer forms view sets and
queues them; inference runs in the scheduler's worker thread and publishes from there; the
executor (multi-threaded) keeps serving parameters and services meanwhile.
"""

import gc
import sys
import threading
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
from raydiff_ros.pipeline.scheduler import InferenceScheduler
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

    def param(self, name: str) -> Any:
        return self.get_parameter(name).value

    # -- lifecycle ----------------------------------------------------------------------------

    def on_configure(self, state: State) -> TransitionCallbackReturn:
        self._config = pipeline_config({s.name: self.param(s.name) for s in PIPELINE_PARAMETERS})
        if not self._build_estimator():
            return TransitionCallbackReturn.FAILURE
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
        self._diagnostics.create_publisher()
        self._tf_static = StaticTransformPublisher(self)
        self._tf = TransformPublisher(self)
        self._calibration = NodeCalibration(self, self._tf_static, num_cameras)
        self._scheduler.start()
        self.get_logger().info(
            f'configured: {num_cameras} cameras, mode {self.param("mode")}, estimator '
            f'{self.param("estimator")}'
        )
        return TransitionCallbackReturn.SUCCESS

    def _build_estimator(self) -> bool:
        """Build the estimator from the parameters; False (reason logged and kept) on failure."""
        try:
            self._estimator = build_estimator(
                self.param('estimator'), self.param('model_dir'), self.param('device'),
                self.param('dtype'), self.param('num_samples'), self.param('seed'),
                self.param('refinement'))
        except EstimatorError as error:
            self._load_error = str(error)
            self.get_logger().error(f'configure failed: {error}')
            return False
        self._load_error = ''
        return True

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        self._inputs.subscribe()
        timers = (
            ('schedule_period_s', self._schedule),
            ('diagnostics_period_s', self._publish_diagnostics),
        )
        self._node_timers = [
            self.create_timer(self.param(name), callback, callback_group=self._timer_group)
            for name, callback in timers
        ]
        return super().on_activate(state)

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        self._inputs.unsubscribe()
        for timer in self._node_timers:
            self.destroy_timer(timer)
        self._node_timers = []
        return super().on_deactivate(state)

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        self.release()
        return TransitionCallbackReturn.SUCCESS

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
        gc.collect()
        torch = sys.modules.get('torch')
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()

    # -- scheduling (timer) and inference (worker thread) -------------------------------------

    def _schedule(self) -> None:
        with self._lock:
            if self._inputs.relocalization_due():
                view_set = self._builder.next_relocalization_set()
                if view_set is not None:
                    self._inputs.relocalization_requested = False
                    self._scheduler.submit(view_set)
            if self.param('mode') == 'rig':
                view_set = self._builder.next_rig_set()
            else:
                view_set = self._builder.next_temporal_set()
        if view_set is not None:
            self._scheduler.submit(view_set)

    def _run_inference(self, view_set):
        result = self._estimator.estimate(view_set.estimation_input())
        return summarize_estimate(view_set, result, self._config.scale,
                                  self._config.uncertainty, self._config.relocalization)

    def _on_inference_error(self, view_set, error: BaseException) -> None:
        text = self._diagnostics.note_problem(f'inference failed: {type(error).__name__}: {error}')
        self.get_logger().warning(text, throttle_duration_sec=LOG_THROTTLE_S)

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
