"""Run the estimator node in its own process and talk to it over DDS from the test process."""

import os
from pathlib import Path
import subprocess
import sys
import threading
import time

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped, PoseWithCovarianceStamped
from node_scenarios import IMAGE_HEIGHT, IMAGE_WIDTH, intrinsics
import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Bool
from tf2_msgs.msg import TFMessage
import yaml

from raydiff_ros.msg import PoseGraph, ViewSetEstimate
from raydiff_ros.ros.conversions import matrix_to_pose
from raydiff_ros.ros.qos import ESTIMATE_QOS, TF_QOS, TF_STATIC_QOS

NODE = 'raydiff_estimator'
SUPPORT_DIR = Path(__file__).resolve().parent
START_TIMEOUT_S = 60.0
CAMERA_QOS_DEPTH = 10


def start_node(params: dict, folder: Path, name: str = NODE) -> subprocess.Popen:
    """Start ``estimator_node`` in a new process with ``params``; output goes to a log file."""
    params_file = folder / f'{name}_params.yaml'
    params_file.write_text(yaml.safe_dump({f'/{name}': {'ros__parameters': params}}))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(SUPPORT_DIR)] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep)
                              if p]), PYTHONUNBUFFERED='1')
    log = open(folder / f'{name}.log', 'w')  # noqa: SIM115 - closed by stop_node
    process = subprocess.Popen(
        [sys.executable, '-m', 'raydiff_ros.ros.estimator_node', '--ros-args',
         '-r', f'__node:={name}', '--params-file', str(params_file)],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    process.log_path = folder / f'{name}.log'
    process.log_file = log
    return process


def stop_node(process: subprocess.Popen) -> str:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    process.log_file.close()
    return process.log_path.read_text()


def stamp(ns: int):
    return Time(nanoseconds=int(ns)).to_msg()


class Probe:
    """Publishes camera streams to the node and records everything it publishes."""

    def __init__(self, num_cameras: int, node_name: str = NODE) -> None:
        self.node = rclpy.create_node('raydiff_test_probe')
        # Reliable publishers match both best-effort (the node's default) and reliable
        # subscriptions; delivery is then what the subscription asks for.
        self.images = [self.node.create_publisher(Image, f'/image_{i}', CAMERA_QOS_DEPTH)
                       for i in range(num_cameras)]
        self.infos = [self.node.create_publisher(CameraInfo, f'/camera_info_{i}',
                                                 CAMERA_QOS_DEPTH) for i in range(num_cameras)]
        self.map_pose = self.node.create_publisher(PoseStamped, '/map_pose', 50)
        self.lost = self.node.create_publisher(Bool, f'/{node_name}/lost', 10)
        self.received = {'tf_static': [], 'tf': [], 'graph': [], 'estimate': [], 'seed': [],
                         'diagnostics': []}
        subscriptions = [
            (TFMessage, '/tf_static', 'tf_static', TF_STATIC_QOS),
            (TFMessage, '/tf', 'tf', TF_QOS),
            (PoseGraph, f'/{node_name}/pose_graph', 'graph', ESTIMATE_QOS),
            (ViewSetEstimate, f'/{node_name}/view_set_estimate', 'estimate', ESTIMATE_QOS),
            (PoseWithCovarianceStamped, f'/{node_name}/relocalization_seed', 'seed', 10),
            (DiagnosticArray, '/diagnostics', 'diagnostics', 10),
        ]
        for message_type, topic, key, qos in subscriptions:
            self.node.create_subscription(message_type, topic,
                                          lambda msg, k=key: self.received[k].append(msg), qos)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while not self._stop.is_set():
            self.executor.spin_once(timeout_sec=0.05)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.executor.shutdown()
        self.node.destroy_node()

    def wait_for(self, condition, timeout_s: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(0.05)
        return condition()

    def wait_for_node(self, timeout_s: float = START_TIMEOUT_S) -> bool:
        """Until the node subscribes to every image and camera_info topic (it is active)."""
        publishers = self.images + self.infos
        return self.wait_for(lambda: all(p.get_subscription_count() > 0 for p in publishers),
                             timeout_s)

    def send_image(self, camera: int, image: np.ndarray, stamp_ns: int,
                   frame_id: str = '', encoding: str = 'rgb8', step: int = 0,
                   data: bytes = b'') -> None:
        message = Image(height=image.shape[0], width=image.shape[1], encoding=encoding,
                        is_bigendian=0, step=step or image.shape[1] * 3)
        message.header.stamp = stamp(stamp_ns)
        message.header.frame_id = frame_id or f'cam{camera}_optical_frame'
        message.data = data or image.tobytes()
        self.images[camera].publish(message)

    def send_camera_info(self, camera: int, stamp_ns: int, K: np.ndarray = None) -> None:
        K = intrinsics() if K is None else K
        message = CameraInfo(width=IMAGE_WIDTH, height=IMAGE_HEIGHT,
                             distortion_model='plumb_bob', d=[0.0] * 5)
        message.header.stamp = stamp(stamp_ns)
        message.header.frame_id = f'cam{camera}_optical_frame'
        message.k = [float(v) for v in K.ravel()]
        P = np.zeros((3, 4))
        P[:, :3] = K
        message.p = [float(v) for v in P.ravel()]
        message.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        self.infos[camera].publish(message)

    def ensure_camera_info(self, stamp_ns: int, timeout_s: float = 20.0) -> bool:
        """Send camera info (best effort) until the node's diagnostics report it for all."""
        cameras = range(len(self.infos))

        def known() -> bool:
            values = self.diagnostics_values()
            return all(values.get(f'camera_{i}_has_camera_info') == 'True' for i in cameras)

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for camera in cameras:
                self.send_camera_info(camera, stamp_ns)
            if self.wait_for(known, 0.5):
                return True
        return False

    def send_map_pose(self, map_T_camera: np.ndarray, stamp_ns: int) -> None:
        message = PoseStamped()
        message.header.stamp = stamp(stamp_ns)
        message.header.frame_id = 'map'
        message.pose = matrix_to_pose(map_T_camera)
        self.map_pose.publish(message)

    def diagnostics_values(self) -> dict:
        """Key values of the newest diagnostics status of the node (empty if none)."""
        for array in reversed(self.received['diagnostics']):
            for status in array.status:
                if status.name.startswith(NODE):
                    return {kv.key: kv.value for kv in status.values} | {
                        '_level': int.from_bytes(status.level, 'little')
                        if isinstance(status.level, bytes) else int(status.level),
                        '_message': status.message}
        return {}
