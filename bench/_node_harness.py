"""What the node benchmarks share: the estimator node in its own process, a publisher of
synthetic camera images in this one, the node's ``/tf_static`` and diagnostics, /proc readings.

``bench_node.py`` (a short run, one table) and ``bench_soak.py`` (a long run sampled every few
seconds) both drive a ``NodeBench``::

    bench = NodeBench(cameras=4, rate=30.0, width=640, height=480)
    if not bench.start():          # the node died: bench.node_log() says why
        ...
    while ...:
        bench.publish_tick()       # one image + camera info per camera, then spin once
        bench.sleep_until_next_tick()
    bench.drain()                  # let the node catch up (at most 30 s)
    bench.close()

With ``estimator='ray_diffusion'`` and no model folder, a randomly initialised model of the
``small`` preset is saved and used (timing does not depend on the weights).
"""

from __future__ import annotations

import os
from pathlib import Path
import subprocess
import sys
import tempfile
import time
from typing import Optional, TextIO

import numpy as np
import rclpy
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, Image
from tf2_msgs.msg import TFMessage
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / 'bench'))
sys.path.insert(0, str(REPO_ROOT))

from bench_model import random_model  # noqa: E402

from raydiff_ros.model.checkpoint import save_model  # noqa: E402
from raydiff_ros.ros.diagnostics_reader import DiagnosticsReader  # noqa: E402
from raydiff_ros.ros.qos import TF_STATIC_QOS  # noqa: E402
from raydiff_ros.simulation.box_scene import BoxScene, ring_rig  # noqa: E402

NODE = 'raydiff_estimator'
CLOCK_TICKS = os.sysconf('SC_CLK_TCK')
KIB_PER_MIB = 1024


def process_cpu_s(pid: int) -> float:
    """User + system CPU time of process ``pid`` (all its threads), seconds."""
    fields = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def process_rss_mib(pid: int) -> float:
    """Resident memory (``VmRSS`` of /proc/<pid>/status) of process ``pid``, MiB."""
    for line in Path(f'/proc/{pid}/status').read_text().splitlines():
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) / KIB_PER_MIB
    return float('nan')


class NodeBench:
    """The estimator node (rig mode) in a child process fed by a publisher in this process.

    Attributes:
        folder: scratch folder (parameters, node log, random model).
        process: the node's process (``process.pid`` for /proc readings).
        sent: images published so far (all cameras).
        published_at: monotonic publish time of each tick, by stamp (ns).
        tf_received: monotonic arrival time of the first ``/tf_static`` transform of each stamp.
        diagnostics: the node's latest diagnostics values (``diagnostics.latest()``).
    """

    def __init__(self, cameras: int, rate: float, width: int, height: int,
                 estimator: str = 'ray_diffusion', model: str = '', qos: str = 'reliable',
                 prefix: str = 'bench_node_') -> None:
        self.cameras, self.rate, self.width, self.height = cameras, rate, width, height
        self.estimator, self.qos = estimator, qos
        self.folder = Path(tempfile.mkdtemp(prefix=prefix))
        self.model_dir = model
        if estimator == 'ray_diffusion' and not model:
            self.model_dir = str(self.folder / 'small_random_model')
            save_model(random_model('small'), self.model_dir)
        scene = BoxScene.random(3)
        R, t = ring_rig(cameras, 2.0, 1.1, 3)
        focal = 0.8 * width
        self.K = np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1.0]])
        self.frames = [scene.render(self.K, R[k], t[k], width, height)[..., ::-1].copy()
                       for k in range(cameras)]                                  # bgr8
        self.sent = 0
        self.published_at: dict[int, float] = {}
        self.tf_received: dict[int, float] = {}
        self.process: Optional[subprocess.Popen] = None
        self._log: Optional[TextIO] = None
        self._start = 0.0
        self._tick = 0

    def node_parameters(self) -> dict:
        """The node's parameters: rig mode, every sharp frame may become a keyframe."""
        return {'num_cameras': self.cameras, 'mode': 'rig', 'estimator': self.estimator,
                'model_dir': self.model_dir, 'num_samples': 1, 'image_qos': self.qos,
                # A static rig: every frame may become a keyframe, so sets can synchronise
                # whatever frames the middleware drops (the ring buffer bounds memory).
                'keyframe_min_interval_s': 0.0, 'keyframe_min_change': 0.0,
                'diagnostics_period_s': 0.5}

    def start(self) -> bool:
        """Start the node and the publisher; wait until every topic is matched.

        Returns:
            False when the node process exited first (see ``node_log``).
        """
        params_file = self.folder / 'params.yaml'
        params_file.write_text(
            yaml.safe_dump({f'/{NODE}': {'ros__parameters': self.node_parameters()}}))
        self._log = open(self.folder / 'node.log', 'w')  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, '-m', 'raydiff_ros.ros.estimator_node', '--ros-args', '-r',
             f'__node:={NODE}', '--params-file', str(params_file)],
            stdout=self._log, stderr=subprocess.STDOUT)
        rclpy.init()
        self.node = rclpy.create_node('bench_node_publisher')
        qos = 5 if self.qos == 'reliable' else rclpy.qos.qos_profile_sensor_data
        self.images = [self.node.create_publisher(Image, f'/image_{k}', qos)
                       for k in range(self.cameras)]
        self.infos = [self.node.create_publisher(CameraInfo, f'/camera_info_{k}', qos)
                      for k in range(self.cameras)]
        self.node.create_subscription(TFMessage, '/tf_static', self._on_tf, TF_STATIC_QOS)
        self.diagnostics = DiagnosticsReader(self.node, NODE)
        while any(p.get_subscription_count() == 0 for p in self.images + self.infos):
            if self.process.poll() is not None:
                return False
            rclpy.spin_once(self.node, timeout_sec=0.1)
        self._start = time.monotonic()
        self._tick = 0
        return True

    def node_log(self) -> str:
        return (self.folder / 'node.log').read_text()

    def _on_tf(self, message: TFMessage) -> None:
        for transform in message.transforms:
            self.tf_received.setdefault(Time.from_msg(transform.header.stamp).nanoseconds,
                                        time.monotonic())

    def elapsed(self) -> float:
        """Seconds since ``start`` returned (the publishing clock)."""
        return time.monotonic() - self._start

    def publish_tick(self) -> None:
        """Publish one camera info and one bgr8 image per camera (one stamp), spin once."""
        stamp_ns = time.time_ns()
        for k in range(self.cameras):
            info = CameraInfo(width=self.width, height=self.height, k=self.K.ravel().tolist())
            info.header.stamp = Time(nanoseconds=stamp_ns).to_msg()
            self.infos[k].publish(info)
            message = Image(height=self.height, width=self.width, encoding='bgr8',
                            step=self.width * 3, data=self.frames[k].tobytes())
            message.header.stamp = info.header.stamp
            message.header.frame_id = f'cam{k}_optical_frame'
            self.images[k].publish(message)
            self.sent += 1
        self.published_at[stamp_ns] = time.monotonic()
        rclpy.spin_once(self.node, timeout_sec=0)
        self._tick += 1

    def sleep_until_next_tick(self) -> None:
        """Sleep to keep ``rate`` ticks per second (no sleep when behind)."""
        delay = self._start + self._tick / self.rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    def spin(self, seconds: float) -> None:
        """Process this side's callbacks (``/tf_static``, diagnostics) for ``seconds``."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            rclpy.spin_once(self.node, timeout_sec=max(0.0, end - time.monotonic()))

    def drain(self) -> dict:
        """After publishing: wait (at most 30 s) for the node to report every image or no
        pending set, then a further 2 s; return its last diagnostics values."""
        end = time.monotonic() + 30.0
        while time.monotonic() < end and self.diagnostics.latest().get('images_received', '0') \
                and int(self.diagnostics.latest()['images_received']) < self.sent:
            rclpy.spin_once(self.node, timeout_sec=0.2)
            if int(self.diagnostics.latest().get('sets_pending', 1)) == 0 and \
                    time.monotonic() > end - 25.0:
                break
        for _ in range(10):
            rclpy.spin_once(self.node, timeout_sec=0.2)
        return self.diagnostics.latest()

    def latencies(self) -> list[float]:
        """Seconds from publishing each estimated set's images to its ``/tf_static``."""
        return [self.tf_received[s] - self.published_at[s] for s in self.tf_received
                if s in self.published_at]

    def close(self) -> None:
        """Stop the publisher and the node."""
        if hasattr(self, 'node'):
            self.node.destroy_node()
        rclpy.try_shutdown()
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)
        if self._log is not None:
            self._log.close()
