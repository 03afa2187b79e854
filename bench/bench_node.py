"""Benchmark of the estimator node: N cameras at R Hz of W x H bgr8 images, over real DDS.

A publisher process-side (this script) streams synthetic camera images (a rendered rig,
``raydiff_ros.simulation``) to the node running in its own process, in rig mode. Reported:

* publish rate achieved by this script (Python publishing of large images is itself costly);
* images received by the node, and dropped (sent - received);
* CPU time the node spent in its image callbacks (decode + keyframe selection), per image and
  as a fraction of one core;
* the node process's total CPU time (callbacks + inference worker + middleware);
* latency from publishing the last image of a view set to receiving its ``/tf_static``.

Usage: python bench/bench_node.py [--cameras 4] [--rate 30] [--width 1280] [--height 720]
    [--duration 10] [--estimator ray_diffusion|classical_sift|python:...] [--qos reliable]
    [--output bench/results/bench_node.md]
With ``--estimator ray_diffusion`` and no ``--model``, a randomly initialised model of the small
preset is used (the timing does not depend on the weights).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import rclpy
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, Image
from tf2_msgs.msg import TFMessage
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / 'bench'))
sys.path.insert(0, str(REPO_ROOT))

from bench_model import machine_description, random_model  # noqa: E402

from raydiff_ros.model.checkpoint import save_model  # noqa: E402
from raydiff_ros.ros.diagnostics_reader import DiagnosticsReader  # noqa: E402
from raydiff_ros.ros.qos import TF_STATIC_QOS  # noqa: E402
from raydiff_ros.simulation.box_scene import BoxScene, ring_rig  # noqa: E402

NODE = 'raydiff_estimator'
DEFAULT_OUTPUT = REPO_ROOT / 'bench' / 'results' / 'bench_node.md'
CLOCK_TICKS = os.sysconf('SC_CLK_TCK')


def process_cpu_s(pid: int) -> float:
    fields = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--cameras', type=int, default=4)
    parser.add_argument('--rate', type=float, default=30.0)
    parser.add_argument('--width', type=int, default=1280)
    parser.add_argument('--height', type=int, default=720)
    parser.add_argument('--duration', type=float, default=10.0)
    parser.add_argument('--estimator', default='ray_diffusion')
    parser.add_argument('--model', default='')
    parser.add_argument('--qos', default='reliable', choices=('reliable', 'sensor_data'))
    parser.add_argument('--output', type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix='bench_node_'))
    model_dir = args.model
    if args.estimator == 'ray_diffusion' and not model_dir:
        model_dir = str(folder / 'small_random_model')
        save_model(random_model('small'), model_dir)

    scene = BoxScene.random(3)
    R, t = ring_rig(args.cameras, 2.0, 1.1, 3)
    focal = 0.8 * args.width
    K = np.array([[focal, 0, args.width / 2], [0, focal, args.height / 2], [0, 0, 1.0]])
    frames = [scene.render(K, R[k], t[k], args.width, args.height)[..., ::-1].copy()
              for k in range(args.cameras)]                                   # bgr8
    params = {'num_cameras': args.cameras, 'mode': 'rig', 'estimator': args.estimator,
              'model_dir': model_dir, 'num_samples': 1, 'image_qos': args.qos,
              # A static rig: every frame may become a keyframe, so sets can synchronise
              # whatever frames the middleware drops (the ring buffer bounds memory).
              'keyframe_min_interval_s': 0.0, 'keyframe_min_change': 0.0,
              'diagnostics_period_s': 0.5}
    params_file = folder / 'params.yaml'
    params_file.write_text(yaml.safe_dump({f'/{NODE}': {'ros__parameters': params}}))
    log = open(folder / 'node.log', 'w')  # noqa: SIM115
    process = subprocess.Popen([sys.executable, '-m', 'raydiff_ros.ros.estimator_node',
                                '--ros-args', '-r', f'__node:={NODE}', '--params-file',
                                str(params_file)], stdout=log, stderr=subprocess.STDOUT)
    rclpy.init()
    node = rclpy.create_node('bench_node_publisher')
    qos = 5 if args.qos == 'reliable' else rclpy.qos.qos_profile_sensor_data
    images = [node.create_publisher(Image, f'/image_{k}', qos) for k in range(args.cameras)]
    infos = [node.create_publisher(CameraInfo, f'/camera_info_{k}', qos)
             for k in range(args.cameras)]
    tf_received: dict[int, float] = {}

    def on_tf(message: TFMessage) -> None:
        for transform in message.transforms:
            tf_received.setdefault(Time.from_msg(transform.header.stamp).nanoseconds,
                                   time.monotonic())

    node.create_subscription(TFMessage, '/tf_static', on_tf, TF_STATIC_QOS)
    diagnostics = DiagnosticsReader(node, NODE)
    try:
        while any(p.get_subscription_count() == 0 for p in images + infos):
            if process.poll() is not None:
                print((folder / 'node.log').read_text())
                return 1
            rclpy.spin_once(node, timeout_sec=0.1)
        cpu_start = process_cpu_s(process.pid)
        published_at: dict[int, float] = {}
        sent = 0
        start = time.monotonic()
        period = 1.0 / args.rate
        tick = 0
        while time.monotonic() - start < args.duration:
            stamp_ns = time.time_ns()
            for k in range(args.cameras):
                info = CameraInfo(width=args.width, height=args.height,
                                  k=K.ravel().tolist())
                info.header.stamp = Time(nanoseconds=stamp_ns).to_msg()
                infos[k].publish(info)
                message = Image(height=args.height, width=args.width, encoding='bgr8',
                                step=args.width * 3, data=frames[k].tobytes())
                message.header.stamp = info.header.stamp
                message.header.frame_id = f'cam{k}_optical_frame'
                images[k].publish(message)
                sent += 1
            published_at[stamp_ns] = time.monotonic()
            rclpy.spin_once(node, timeout_sec=0)
            tick += 1
            delay = start + tick * period - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        elapsed = time.monotonic() - start
        end = time.monotonic() + 30.0
        while time.monotonic() < end and diagnostics.latest().get('images_received', '0') \
                and int(diagnostics.latest()['images_received']) < sent:
            rclpy.spin_once(node, timeout_sec=0.2)
            if int(diagnostics.latest().get('sets_pending', 1)) == 0 and \
                    time.monotonic() > end - 25.0:
                break
        for _ in range(10):
            rclpy.spin_once(node, timeout_sec=0.2)
        values = diagnostics.latest()
        cpu_total = process_cpu_s(process.pid) - cpu_start
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        process.terminate()
        process.wait(timeout=30)
        log.close()
    received = int(values.get('images_received', 0))
    callbacks_cpu = float(values.get('image_callbacks_cpu_s', 'nan'))
    latencies = [tf_received[s] - published_at[s] for s in tf_received if s in published_at]
    lines = [
        f'# bench_node: {args.cameras} cameras, {args.rate:g} Hz, {args.width}x{args.height} '
        f'bgr8, {args.duration:g} s, QoS {args.qos}, estimator {args.estimator}', '',
        f'Machine: {machine_description()}', '',
        '| quantity | value |', '|---|---|',
        f'| images published | {sent} ({sent / elapsed:.1f}/s achieved, '
        f'{args.cameras * args.rate:g}/s asked) |',
        f'| images received by the node | {received} |',
        f'| images dropped | {sent - received} ({100 * (sent - received) / max(sent, 1):.1f}%) |',
        f'| CPU in image callbacks | {callbacks_cpu:.2f} s = '
        f'{1000 * callbacks_cpu / max(received, 1):.2f} ms/image = '
        f'{100 * callbacks_cpu / elapsed:.0f}% of one core |',
        f'| node process CPU (all threads) | {cpu_total:.2f} s = '
        f'{100 * cpu_total / elapsed:.0f}% of one core |',
        f'| view sets estimated / dropped | {values.get("sets_estimated")} / '
        f'{values.get("sets_dropped")} |',
        '| latency last image -> /tf_static | ' + (
            f'median {statistics.median(latencies):.2f} s, max {max(latencies):.2f} s '
            f'over {len(latencies)} sets |' if latencies else 'no set published |'),
        f'| inference latency (node) | mean {values.get("sets_mean_latency_s")} s |',
    ]
    text = '\n'.join(lines) + '\n'
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())
