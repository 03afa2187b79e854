"""``make demo``: a 4-camera rig recorded in a bag, replayed through the running estimator node.

1. Render a table-top scene seen by a rig of 4 cameras (``raydiff_ros.simulation``), and write a
   rosbag2 (MCAP) with the images, camera infos and the true rig on ``/ground_truth/tf_static``
   (made once, then reused: ``demo_output/demo_rig_bag``).
2. Start the estimator node in its own process (rig mode, metric scale from the known distance
   between cameras 0 and 1) and replay the bag into it over DDS.
3. Print the estimated against the true relative transforms with their errors; write
   ``demo_output/summary.json`` (per camera pair: rotation error and translation-direction
   error in degrees) and ``demo_output/cameras.png`` (true and estimated camera frustums).

Estimator: ``fused`` by default (the ray prior fused with verified learned matches); the
report says, per camera, which evidence fixed its pose (``verified_matches`` or ``prior``).
"""

import argparse
import json
import os
from pathlib import Path
import subprocess
import sys
import time
from typing import Optional

import numpy as np
import rclpy
from rclpy.serialization import deserialize_message
from rclpy.time import Time
from rosbags.rosbag2 import Reader
from scipy.spatial.transform import Rotation
from sensor_msgs.msg import CameraInfo, Image
from tf2_msgs.msg import TFMessage
import yaml

from raydiff_ros.demos.bag_tools import replay, write_bag
from raydiff_ros.estimation import DEFAULT_ESTIMATOR, REFINEMENTS, available_estimators
from raydiff_ros.msg import ViewSetEstimate
from raydiff_ros.ros.conversions import pose_to_matrix, transform_stamped, transform_to_matrix
from raydiff_ros.ros.qos import ESTIMATE_QOS, TF_STATIC_QOS
from raydiff_ros.simulation.box_scene import BoxScene, ring_rig

DEMO_DIR = Path('demo_output')
BAG_NAME = 'demo_rig_bag'
NODE_NAME = 'raydiff_estimator'
NUM_CAMERAS = 4
WIDTH, HEIGHT = 640, 480
FOCAL_PX = 520.0
RIG_RADIUS_M, RIG_HEIGHT_M = 2.0, 1.1
SNAPSHOTS = 3
SNAPSHOT_PERIOD_NS = 1_500_000_000
START_NS = 1_700_000_000_000_000_000
LAST_SNAPSHOT_NS = START_NS + (SNAPSHOTS - 1) * SNAPSHOT_PERIOD_NS
"""Stamp of the rig set the demo reports. Which earlier snapshots the node estimates depends on
how fast the replay arrives (a rig set is only formed from keyframes newer than the last
one), but the newest complete set is always estimated: reporting it keeps the figures the same
from run to run."""
SENSOR_NOISE_STD = 2.0
SCENE_SEED = 11
START_TIMEOUT_S = 60.0
DEFAULT_TIMEOUT_S = 300.0
FRUSTUM_DEPTH_M = 0.3
MIN_TRANSLATION_NORM = 1e-12
#: Estimators without a diffusion sampler: ``--refinement guided`` is refused for them.
GUIDANCE_INCAPABLE = ('classical_sift', 'fused', 'matches')
EXIT_NO_GUIDANCE = 2


def frame(index: int) -> str:
    return f'cam{index}_optical_frame'


def rig_intrinsics() -> np.ndarray:
    return np.array([[FOCAL_PX, 0.0, WIDTH / 2], [0.0, FOCAL_PX, HEIGHT / 2], [0.0, 0.0, 1.0]])


def camera_info(index: int, stamp) -> CameraInfo:
    K = rig_intrinsics()
    message = CameraInfo(width=WIDTH, height=HEIGHT, distortion_model='plumb_bob', d=[0.0] * 5)
    message.header.stamp, message.header.frame_id = stamp, frame(index)
    message.k = K.ravel().tolist()
    message.r = np.eye(3).ravel().tolist()
    message.p = np.hstack([K, np.zeros((3, 1))]).ravel().tolist()
    return message


def build_demo_bag(path: Path, seed: int = SCENE_SEED) -> Path:
    """Render the rig and write the bag (images, camera infos, true rig)."""
    scene = BoxScene.random(seed)
    R, t = ring_rig(NUM_CAMERAS, RIG_RADIUS_M, RIG_HEIGHT_M, seed)
    K = rig_intrinsics()
    clean = [scene.render(K, R[k], t[k], WIDTH, HEIGHT) for k in range(NUM_CAMERAS)]
    rng = np.random.default_rng(seed)
    world_T_camera = [np.linalg.inv(np.vstack([np.hstack([R[k], t[k][:, None]]),
                                               [0, 0, 0, 1]])) for k in range(NUM_CAMERAS)]
    records = []
    start = rclpy.time.Time(nanoseconds=START_NS).to_msg()
    truth = TFMessage(transforms=[
        transform_stamped(np.linalg.inv(world_T_camera[0]) @ world_T_camera[k], frame(0),
                          frame(k), start) for k in range(1, NUM_CAMERAS)])
    records.append(('/ground_truth/tf_static', START_NS, truth))
    for snapshot in range(SNAPSHOTS):
        stamp_ns = START_NS + snapshot * SNAPSHOT_PERIOD_NS
        stamp = rclpy.time.Time(nanoseconds=stamp_ns).to_msg()
        for k in range(NUM_CAMERAS):
            noisy = np.clip(clean[k] + rng.normal(0, SENSOR_NOISE_STD, clean[k].shape), 0, 255)
            image = Image(height=HEIGHT, width=WIDTH, encoding='rgb8', step=WIDTH * 3,
                          data=noisy.astype(np.uint8).tobytes())
            image.header.stamp, image.header.frame_id = stamp, frame(k)
            records.append((f'/demo/cam{k}/camera_info', stamp_ns, camera_info(k, stamp)))
            records.append((f'/demo/cam{k}/image_raw', stamp_ns + 1, image))
    return write_bag(path, records)


def read_truth(bag: Path) -> dict[int, np.ndarray]:
    """cam0_T_camk of the true rig, read back from the bag."""
    with Reader(bag) as reader:
        for connection, _, raw in reader.messages():
            if connection.topic == '/ground_truth/tf_static':
                message = deserialize_message(bytes(raw), TFMessage)
                truth = {0: np.eye(4)}
                for t in message.transforms:
                    truth[int(t.child_frame_id[3])] = transform_to_matrix(t.transform)
                return truth
    raise RuntimeError(f'{bag} has no /ground_truth/tf_static')


SHIPPED_MODEL_NOTE = (
    'note: the shipped default model is a small baseline trained for 1.6 hours on a 2-core '
    'CPU (models/README.md: accuracy and limits); compare with --estimator classical_sift, or '
    'pass a better model with --model')


def start_node(estimator: str, baseline_m: float, folder: Path, model_dir: str,
               refinement: str = 'none') -> subprocess.Popen:
    params = {'num_cameras': NUM_CAMERAS, 'mode': 'rig', 'estimator': estimator,
              'refinement': refinement,
              'model_dir': model_dir, 'num_samples': 4, 'scale_source': 'known_baseline',
              'baseline_camera_a': 0, 'baseline_camera_b': 1, 'baseline_m': baseline_m,
              'keyframe_min_interval_s': 1.0, 'sync_slop_s': 0.02,
              # 640x480 images exceed DDS best-effort fragment limits: replay reliably.
              'image_qos': 'reliable'}
    params_file = folder / 'demo_params.yaml'
    params_file.write_text(yaml.safe_dump({f'/{NODE_NAME}': {'ros__parameters': params}}))
    remaps = []
    for k in range(NUM_CAMERAS):
        remaps += ['-r', f'image_{k}:=/demo/cam{k}/image_raw',
                   '-r', f'camera_info_{k}:=/demo/cam{k}/camera_info']
    log = open(folder / 'node.log', 'w')  # noqa: SIM115 - kept open for the process
    return subprocess.Popen([sys.executable, '-m', 'raydiff_ros.ros.estimator_node',
                             '--ros-args', '-r', f'__node:={NODE_NAME}', '--params-file',
                             str(params_file), *remaps], stdout=log, stderr=subprocess.STDOUT,
                            env=dict(os.environ, PYTHONUNBUFFERED='1'))


def last_snapshot_estimate(messages: list) -> Optional[ViewSetEstimate]:
    """The estimate of the last snapshot's rig set among ``messages``, or None."""
    return next((m for m in messages
                 if Time.from_msg(m.header.stamp).nanoseconds == LAST_SNAPSHOT_NS), None)


def angle_deg(a: np.ndarray, b: np.ndarray) -> float | None:
    """Angle between two directions, degrees; None when one of them is zero (undefined)."""
    norms = np.linalg.norm(a) * np.linalg.norm(b)
    if norms < MIN_TRANSLATION_NORM:
        return None
    return float(np.degrees(np.arccos(np.clip(np.dot(a, b) / norms, -1.0, 1.0))))


def compare(truth: dict[int, np.ndarray], estimate: dict[int, np.ndarray]) -> list[dict]:
    rows = []
    for i in range(NUM_CAMERAS):
        for j in range(i + 1, NUM_CAMERAS):
            true_ij = np.linalg.inv(truth[i]) @ truth[j]
            est_ij = np.linalg.inv(estimate[i]) @ estimate[j]
            rotation_error = float(np.degrees(Rotation.from_matrix(
                true_ij[:3, :3].T @ est_ij[:3, :3]).magnitude()))
            rows.append({'pair': [i, j], 'rotation_error_deg': rotation_error,
                         'translation_direction_error_deg': angle_deg(true_ij[:3, 3],
                                                                      est_ij[:3, 3]),
                         'true_translation_m': true_ij[:3, 3].tolist(),
                         'estimated_translation_m': est_ij[:3, 3].tolist()})
    return rows


def plot(truth: dict, estimate: dict, path: Path, title: str) -> None:
    from raydiff_ros.evaluation.plotting import (
        GROUND_TRUTH_COLOR,
        GROUND_TRUTH_WIDTH,
        PREDICTION_COLOR,
        PREDICTION_WIDTH,
        CameraSetStyle,
        frustum_corners_world,
        plot_camera_sets,
    )
    K = np.broadcast_to(rig_intrinsics(), (NUM_CAMERAS, 3, 3))
    sizes = np.broadcast_to([WIDTH, HEIGHT], (NUM_CAMERAS, 2))
    styles = []
    for poses, color, label, width in ((truth, GROUND_TRUTH_COLOR, 'true rig', GROUND_TRUTH_WIDTH),
                                       (estimate, PREDICTION_COLOR, 'estimate',
                                        PREDICTION_WIDTH)):
        stacked = np.stack([poses[k] for k in range(NUM_CAMERAS)])
        camera_T_ref = np.linalg.inv(stacked)
        corners = frustum_corners_world(K, camera_T_ref[:, :3, :3], camera_T_ref[:, :3, 3],
                                        sizes, FRUSTUM_DEPTH_M)
        styles.append(CameraSetStyle(corners, stacked[:, :3, 3], color, label, width))
    plot_camera_sets(styles, path, title)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--estimator', default=DEFAULT_ESTIMATOR,
                        help=f'a registry name ({", ".join(available_estimators(False))}) or '
                        f'python:<module>:<factory> (default {DEFAULT_ESTIMATOR})')
    parser.add_argument('--model', default='', help='model folder for ray_diffusion')
    parser.add_argument('--refinement', default='none', choices=tuple(REFINEMENTS),
                        help='geometric refinement after the estimator: guided (Sampson '
                        'guidance of the diffusion sampler, ray_diffusion only) or bundle')
    parser.add_argument('--output', type=Path, default=DEMO_DIR)
    parser.add_argument('--timeout', type=float, default=DEFAULT_TIMEOUT_S)
    args = parser.parse_args(argv)
    estimator = args.estimator
    if args.refinement == 'guided' and estimator in GUIDANCE_INCAPABLE:
        print(f'demo: error: --refinement guided needs a ray-diffusion model; the estimator is '
              f'{estimator} (no diffusion sampler): use --refinement bundle', file=sys.stderr)
        return EXIT_NO_GUIDANCE
    args.output.mkdir(parents=True, exist_ok=True)
    bag = args.output / BAG_NAME
    if not bag.exists():
        print(f'demo: rendering the rig and writing {bag}', flush=True)
        build_demo_bag(bag)
    truth = read_truth(bag)
    baseline = float(np.linalg.norm(truth[1][:3, 3]))
    process = start_node(estimator, baseline, args.output, args.model, args.refinement)
    rclpy.init()
    received = {'estimate': [], 'tf': []}
    node = rclpy.create_node('raydiff_demo_player')
    try:
        node.create_subscription(ViewSetEstimate, f'/{NODE_NAME}/view_set_estimate',
                                 received['estimate'].append, ESTIMATE_QOS)
        node.create_subscription(TFMessage, '/tf_static', received['tf'].append, TF_STATIC_QOS)
        probe = node.create_publisher(Image, '/demo/cam0/image_raw', 10)
        deadline = time.monotonic() + START_TIMEOUT_S
        while probe.get_subscription_count() == 0:
            if process.poll() is not None or time.monotonic() > deadline:
                print((args.output / 'node.log').read_text(), file=sys.stderr)
                print('demo: the estimator node did not come up', file=sys.stderr)
                return 1
            rclpy.spin_once(node, timeout_sec=0.1)
        node.destroy_publisher(probe)
        camera_topics = [f'/demo/cam{k}/{name}' for k in range(NUM_CAMERAS)
                         for name in ('image_raw', 'camera_info')]
        try:
            count = replay(bag, node, wait_for=camera_topics)
        except TimeoutError as error:
            print((args.output / 'node.log').read_text(), file=sys.stderr)
            print(f'demo: the estimator node did not subscribe to the cameras: {error}',
                  file=sys.stderr)
            return 1
        print(f'demo: replayed {count} messages from {bag} into the {estimator} node',
              flush=True)
        deadline = time.monotonic() + args.timeout
        while (last_snapshot_estimate(received['estimate']) is None
               and time.monotonic() < deadline):
            rclpy.spin_once(node, timeout_sec=0.2)
        message = last_snapshot_estimate(received['estimate'])
        if message is None:
            print((args.output / 'node.log').read_text(), file=sys.stderr)
            print(f'demo: no estimate of the last rig set within the timeout '
                  f'({len(received["estimate"])} of earlier sets)', file=sys.stderr)
            return 1
        estimate = {c.camera_index: pose_to_matrix(c.pose) for c in message.cameras}
        sources = {c.camera_index: c.pose_source for c in message.cameras}
        rows = compare(truth, estimate)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        process.terminate()
        process.wait(timeout=30)

    print(f'\nestimator: {estimator}, refinement {args.refinement}; inference '
          f'{message.inference_time_s:.2f} s; scale from the known cam0-cam1 distance '
          f'({baseline:.3f} m)')
    print(f'{"pair":>6} {"rot err (deg)":>14} {"dir err (deg)":>14}   true t (m)        '
          f'           estimated t (m)')
    for row in rows:
        true_t = ' '.join(f'{v:+.3f}' for v in row['true_translation_m'])
        est_t = ' '.join(f'{v:+.3f}' for v in row['estimated_translation_m'])
        pair = f'{row["pair"][0]}-{row["pair"][1]}'
        direction = row['translation_direction_error_deg']
        direction = 'n/a' if direction is None else f'{direction:.2f}'
        print(f'{pair:>6} {row["rotation_error_deg"]:14.2f} {direction:>14}   {true_t}   '
              f'{est_t}')
    errors = [row['rotation_error_deg'] for row in rows]
    print(f'median rotation error {np.median(errors):.2f} deg over {len(rows)} pairs')
    print('what fixed each camera: ' + ', '.join(
        f'cam{k} {sources[k]}' for k in sorted(sources)))
    summary = {'estimator': estimator, 'refinement': args.refinement,
               'median_rotation_error_deg': float(np.median(errors)),
               'pose_sources': {f'cam{k}': sources[k] for k in sorted(sources)},
               'inference_time_s': message.inference_time_s,
               'scale_source': 'known_baseline cam0-cam1', 'pairs': rows,
               'tf_static_messages_received': len(received['tf'])}
    (args.output / 'summary.json').write_text(json.dumps(summary, indent=2) + '\n')
    plot(truth, estimate, args.output / 'cameras.png',
         f'raydiff_ros demo: true (green) vs estimated (red) rig, {estimator}')
    print(f'\nwrote {args.output / "summary.json"} and {args.output / "cameras.png"}')
    if estimator == 'ray_diffusion' and not args.model:
        print(SHIPPED_MODEL_NOTE)
    return 0


if __name__ == '__main__':
    sys.exit(main())
