"""Soak benchmark of the estimator node: N cameras at R Hz of W x H bgr8 for minutes, over DDS.

The node runs in its own process (rig mode), fed by a publisher in this one (shared with
``bench_node.py``: ``_node_harness.py``). Every ``--interval`` seconds a sample records:

* ``rss_mib``: the node's resident memory (VmRSS of /proc/<pid>/status; psutil is not used);
* ``published`` / ``received`` / ``dropped``: images sent by this script, image callbacks run
  by the node (its diagnostics), and the difference;
* ``callbacks_cpu_s``: thread CPU time the node spent in its image callbacks (diagnostics);
  ``process_cpu_s``: the node process's CPU time, all threads (/proc/<pid>/stat);
* ``sets_estimated`` / ``sets_dropped``: view sets estimated, and dropped by the scheduler
  (a newer set replaced them while the estimator was busy);
* ``latencies_s``: for the sets whose ``/tf_static`` arrived since the previous sample, seconds
  from publishing the set's images (the last image of the set) to its transform.

At the end: the least-squares slope of ``rss_mib`` over time after ``--warmup`` seconds
(MiB per minute; a leak shows as a slope that stays positive on longer runs), rates per second
and per image, and latency percentiles. Written to ``--output`` (``soak.json`` with every
sample, ``soak.md`` summary) and printed.

Usage: python bench/bench_soak.py [--cameras 4] [--rate 30] [--width 640] [--height 480]
    [--duration 600] [--interval 5] [--warmup 60] [--estimator ray_diffusion] [--model DIR]
    [--qos reliable] [--output bench/results/soak]
As ``bench_node.py``: ``--estimator ray_diffusion`` without ``--model`` uses a randomly
initialised model of the ``small`` preset (the real estimator's cost, weights do not matter).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
import statistics
import sys
import time

from _node_harness import REPO_ROOT, NodeBench, process_cpu_s, process_rss_mib
from bench_model import machine_description

DEFAULT_OUTPUT = REPO_ROOT / 'bench' / 'results' / 'soak'
SECONDS_PER_MINUTE = 60.0


def memory_slope_mib_per_min(times_s: list[float], rss_mib: list[float]) -> float:
    """Least-squares slope of ``rss_mib`` against ``times_s``, MiB per minute (NaN if < 2)."""
    if len(times_s) < 2:
        return math.nan
    mean_t = statistics.fmean(times_s)
    mean_m = statistics.fmean(rss_mib)
    var_t = sum((t - mean_t) ** 2 for t in times_s)
    if var_t == 0.0:
        return math.nan
    covar = sum((t - mean_t) * (m - mean_m) for t, m in zip(times_s, rss_mib, strict=True))
    return covar / var_t * SECONDS_PER_MINUTE


def take_sample(bench: NodeBench, cpu_start: float, latencies_before: int) -> dict:
    """One sample of the running node (see the module docstring)."""
    values = bench.diagnostics.latest()
    received = int(values.get('images_received', 0))
    latencies = bench.latencies()
    return {
        't_s': round(bench.elapsed(), 3),
        'rss_mib': round(process_rss_mib(bench.process.pid), 2),
        'published': bench.sent,
        'received': received,
        'dropped': bench.sent - received,
        'callbacks_cpu_s': float(values.get('image_callbacks_cpu_s', 0.0)),
        'process_cpu_s': round(process_cpu_s(bench.process.pid) - cpu_start, 2),
        'sets_estimated': int(values.get('sets_estimated', 0)),
        'sets_dropped': int(values.get('sets_dropped', 0)),
        'latencies_s': [round(v, 3) for v in latencies[latencies_before:]],
    }


def summarize(samples: list[dict], final: dict, warmup_s: float,
              drain_latencies: list[float]) -> dict:
    """Figures of the whole run: memory and rates from the samples taken while publishing;
    images received, callback CPU and sets from the node's diagnostics after the drain
    (``final``); latencies of every set, including those published during the drain."""
    last = samples[-1]
    duration = last['t_s']
    steady = [s for s in samples if s['t_s'] >= warmup_s]
    warmup_used = warmup_s
    if len(steady) < 3:  # a short check: fit the second half
        steady = samples[len(samples) // 2:]
        warmup_used = steady[0]['t_s'] if steady else math.nan
    latencies = [v for s in samples for v in s['latencies_s']] + drain_latencies
    quantiles = (statistics.quantiles(latencies, n=20, method='inclusive')
                 if len(latencies) >= 2 else [])
    received = int(final.get('images_received', last['received']))
    callbacks = float(final.get('image_callbacks_cpu_s', last['callbacks_cpu_s']))
    return {
        'duration_s': duration,
        'rss_start_mib': samples[0]['rss_mib'],
        'rss_end_mib': last['rss_mib'],
        'rss_max_mib': max(s['rss_mib'] for s in samples),
        'memory_slope_mib_per_min': round(memory_slope_mib_per_min(
            [s['t_s'] for s in steady], [s['rss_mib'] for s in steady]), 3),
        'memory_slope_from_s': warmup_used,
        'memory_slope_samples': len(steady),
        'published': last['published'],
        'published_per_s': round(last['published'] / duration, 1),
        'received': received,
        'dropped': last['published'] - received,
        'dropped_share': round((last['published'] - received) / max(last['published'], 1), 4),
        'callbacks_cpu_ms_per_image': round(1000 * callbacks / max(received, 1), 3),
        'callbacks_cpu_share_of_core': round(callbacks / duration, 4),
        'process_cpu_share_of_core': round(last['process_cpu_s'] / duration, 4),
        'sets_estimated': int(final.get('sets_estimated', last['sets_estimated'])),
        'sets_dropped': int(final.get('sets_dropped', last['sets_dropped'])),
        'latency_sets': len(latencies),
        'latency_median_s': round(statistics.median(latencies), 3) if latencies else None,
        'latency_p95_s': round(quantiles[18], 3) if quantiles else None,
        'latency_max_s': round(max(latencies), 3) if latencies else None,
        'inference_mean_s': round(float(final.get('sets_mean_latency_s', 'nan')), 3),
    }


def markdown(args: argparse.Namespace, summary: dict, samples: list[dict]) -> str:
    """The summary table and a condensed sample table."""
    s = summary
    lines = [
        f'# bench_soak: {args.cameras} cameras, {args.rate:g} Hz, {args.width}x{args.height} '
        f'bgr8, {s["duration_s"]:.0f} s, QoS {args.qos}, estimator {args.estimator}', '',
        f'Machine: {machine_description()}', '',
        '| quantity | value |', '|---|---|',
        f'| node resident memory | start {s["rss_start_mib"]:.0f} MiB, end '
        f'{s["rss_end_mib"]:.0f} MiB, max {s["rss_max_mib"]:.0f} MiB |',
        f'| memory slope (least squares from {s["memory_slope_from_s"]:.0f} s, '
        f'{s["memory_slope_samples"]} samples) | {s["memory_slope_mib_per_min"]:+.2f} MiB/min |',
        f'| images published | {s["published"]} ({s["published_per_s"]}/s achieved, '
        f'{args.cameras * args.rate:g}/s asked) |',
        f'| images received / dropped | {s["received"]} / {s["dropped"]} '
        f'({100 * s["dropped_share"]:.1f}%) |',
        f'| CPU in image callbacks | {s["callbacks_cpu_ms_per_image"]:.2f} ms/image, '
        f'{100 * s["callbacks_cpu_share_of_core"]:.0f}% of one core |',
        f'| node process CPU (all threads) | {100 * s["process_cpu_share_of_core"]:.0f}% '
        'of one core |',
        f'| view sets estimated / dropped | {s["sets_estimated"]} / {s["sets_dropped"]} |',
        '| latency last image -> /tf_static | ' + (
            f'median {s["latency_median_s"]:.2f} s, p95 {s["latency_p95_s"] or math.nan:.2f}'
            f' s, max {s["latency_max_s"]:.2f} s over {s["latency_sets"]} sets |'
            if s['latency_sets'] else 'no set published |'),
        f'| inference latency (node) | mean {s["inference_mean_s"]} s |', '',
        '| t (s) | RSS (MiB) | published | received | callbacks CPU (s) | process CPU (s) '
        '| sets estimated | sets dropped |', '|---|---|---|---|---|---|---|---|',
    ]
    step = max(1, len(samples) // 20)
    for sample in samples[::step] + ([samples[-1]] if (len(samples) - 1) % step else []):
        lines.append(
            f'| {sample["t_s"]:.0f} | {sample["rss_mib"]:.1f} | {sample["published"]} | '
            f'{sample["received"]} | {sample["callbacks_cpu_s"]:.2f} | '
            f'{sample["process_cpu_s"]:.2f} | {sample["sets_estimated"]} | '
            f'{sample["sets_dropped"]} |')
    return '\n'.join(lines) + '\n'


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--cameras', type=int, default=4)
    parser.add_argument('--rate', type=float, default=30.0, help='images per second per camera')
    parser.add_argument('--width', type=int, default=640)
    parser.add_argument('--height', type=int, default=480)
    parser.add_argument('--duration', type=float, default=600.0, help='seconds of publishing')
    parser.add_argument('--interval', type=float, default=5.0, help='seconds between samples')
    parser.add_argument('--warmup', type=float, default=60.0,
                        help='seconds left out of the memory slope')
    parser.add_argument('--estimator', default='ray_diffusion')
    parser.add_argument('--model', default='')
    parser.add_argument('--qos', default='reliable', choices=('reliable', 'sensor_data'))
    parser.add_argument('--output', type=Path, default=DEFAULT_OUTPUT, help='folder')
    args = parser.parse_args(argv)
    bench = NodeBench(args.cameras, args.rate, args.width, args.height, args.estimator,
                      args.model, args.qos, prefix='bench_soak_')
    samples: list[dict] = []
    try:
        if not bench.start():
            print(bench.node_log())
            return 1
        cpu_start = process_cpu_s(bench.process.pid)
        samples.append(take_sample(bench, cpu_start, 0))
        next_sample = args.interval
        seen = 0
        while bench.elapsed() < args.duration:
            bench.publish_tick()
            if bench.elapsed() >= next_sample:
                samples.append(take_sample(bench, cpu_start, seen))
                seen += len(samples[-1]['latencies_s'])
                print(f'{time.strftime("%H:%M:%S")} ' + json.dumps(
                    {k: v for k, v in samples[-1].items() if k != 'latencies_s'}), flush=True)
                next_sample += args.interval
            bench.sleep_until_next_tick()
        samples.append(take_sample(bench, cpu_start, seen))  # the end of publishing
        seen += len(samples[-1]['latencies_s'])
        final = bench.drain()
        drain = {'rss_mib': process_rss_mib(bench.process.pid),
                 'latencies_s': [round(v, 3) for v in bench.latencies()[seen:]]}
    finally:
        bench.close()
    summary = summarize(samples, final, args.warmup, drain['latencies_s'])
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    text = markdown(args, summary, samples)
    print(text)
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / 'soak.json').write_text(json.dumps(
        {'config': config, 'machine': machine_description(), 'summary': summary,
         'final_diagnostics': final, 'after_drain': drain, 'samples': samples}, indent=1))
    (args.output / 'soak.md').write_text(text)
    print(f'written: {args.output / "soak.json"}, {args.output / "soak.md"}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
