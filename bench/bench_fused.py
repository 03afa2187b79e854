"""The fused estimator per stage for N = 2, 4, 8 views at 640 x 480, with peak memory.

Views: a rendered table-top scene (``raydiff_ros.simulation``) seen by a ring of N cameras with
known intrinsics (neighbours 25 to 40 deg apart, so pairs overlap as on a rig). For each N the
estimator runs ``--warm`` times untimed, then ``--runs`` timed; the median seconds of each stage
of ``EstimationResult.timings_s`` (prior, features, matching, geometry, fusion,
bundle_adjustment, total) are printed and written to ``bench/results/fused.md`` with the
process's peak resident memory (and the peak CUDA memory on a GPU).

    .venv/bin/python bench/bench_fused.py [--device cpu|cuda] [--runs 3] [--samples 4]
        [--variants 'default;first_matcher=none']

``--variants``: estimators to compare side by side in one run, separated by ';', each
``default`` or comma-separated ``KEY=VALUE`` options of ``fused`` (rows in turn for each N).
"""

import argparse
import platform
import resource
import sys

from _results import write_table
import numpy as np
import torch

from raydiff_ros.estimation import (
    EstimatorOptions,
    ViewSetInput,
    create_estimator,
    parse_options,
)
from raydiff_ros.simulation.box_scene import BoxScene, ring_rig

WIDTH, HEIGHT, FOCAL_PX = 640, 480, 520.0
STAGES = ('prior', 'features', 'matching', 'geometry', 'fusion', 'bundle_adjustment', 'total')


def view_set(num: int, seed: int = 5) -> ViewSetInput:
    K = np.array([[FOCAL_PX, 0, WIDTH / 2], [0, FOCAL_PX, HEIGHT / 2], [0, 0, 1]])
    scene = BoxScene.random(seed)
    R, t = ring_rig(num, radius_m=2.0, height_m=1.1, seed=seed)
    rng = np.random.default_rng(seed)
    images = [np.clip(scene.render(K, R[k], t[k], WIDTH, HEIGHT)
                      + rng.normal(0, 2.0, (HEIGHT, WIDTH, 3)), 0, 255).astype(np.uint8)
              for k in range(num)]
    return ViewSetInput(images=images, K=K)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--runs', type=int, default=3)
    parser.add_argument('--warm', type=int, default=1)
    parser.add_argument('--samples', type=int, default=4, help='prior samples')
    parser.add_argument('--views', default='2,4,8')
    parser.add_argument('--variants', default='default')
    args = parser.parse_args()
    variants = {name.strip(): create_estimator('fused', EstimatorOptions(
        device=args.device, num_samples=args.samples,
        extra=parse_options('' if name.strip() == 'default' else name)))
        for name in args.variants.split(';')}
    header = (f'machine: {platform.processor() or platform.machine()}, device {args.device}, '
              f'{torch.get_num_threads()} torch threads, torch {torch.__version__}; '
              f'{WIDTH}x{HEIGHT}, prior samples {args.samples}, median of {args.runs} warm runs')
    lines = [header, '', '| N | variant | ' + ' | '.join(STAGES)
             + ' | pairs chosen / verified by the first try / retried / verified | peak RSS MiB '
             '| peak CUDA MiB |',
             '|---' * (len(STAGES) + 5) + '|']
    for num, (variant, estimator) in ((int(n), item) for n in args.views.split(',')
                                      for item in variants.items()):
        views = view_set(num)
        for _ in range(args.warm):
            estimator.estimate(views)
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        timings = [estimator.estimate(views).timings_s for _ in range(args.runs)]
        report = estimator.last_report
        medians = [np.median([t.get(stage, 0.0) for t in timings]) for stage in STAGES]
        peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        peak_cuda = (torch.cuda.max_memory_allocated() / 2 ** 20
                     if torch.cuda.is_available() else float('nan'))
        lines.append(f'| {num} | {variant} | ' + ' | '.join(f'{m:.3f}' for m in medians)
                     + f' | {report.pairs_selected} / {report.pairs_first_verified} / '
                     f'{report.pairs_retried} / {report.pairs_verified} | {peak_rss:.0f} | '
                     f'{peak_cuda:.0f} |')
        print(lines[-1], flush=True)
    write_table('fused.md', lines, header)
    return 0


if __name__ == '__main__':
    sys.exit(main())
