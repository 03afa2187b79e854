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
from pathlib import Path
import statistics
import sys

from _node_harness import REPO_ROOT, NodeBench, process_cpu_s
from bench_model import machine_description

DEFAULT_OUTPUT = REPO_ROOT / 'bench' / 'results' / 'bench_node.md'


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
    bench = NodeBench(args.cameras, args.rate, args.width, args.height, args.estimator,
                      args.model, args.qos)
    try:
        if not bench.start():
            print(bench.node_log())
            return 1
        cpu_start = process_cpu_s(bench.process.pid)
        while bench.elapsed() < args.duration:
            bench.publish_tick()
            bench.sleep_until_next_tick()
        elapsed = bench.elapsed()
        values = bench.drain()
        cpu_total = process_cpu_s(bench.process.pid) - cpu_start
    finally:
        bench.close()
    sent = bench.sent
    received = int(values.get('images_received', 0))
    callbacks_cpu = float(values.get('image_callbacks_cpu_s', 'nan'))
    latencies = bench.latencies()
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
