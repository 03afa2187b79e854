"""End-to-end benchmark of the pose estimation engine (``RayDiffusionEngine``), per stage.

Stages, for N images of 640x480 and K samples drawn in one batch: preprocess (crop, resize),
features (backbone), sampling (denoiser passes down to t = 29), rays_to_cameras (Procrustes
with known K), total; plus peak memory (CPU: process peak RSS; CUDA: peak allocated).

On a CUDA device, ``--compare-eager`` also runs the same model as a plain fp32 engine in the
same process and prints the speed-up of the configured engine (bf16 autocast by default) over
it, side by side. Weights are random (timing does not depend on their values).

Usage:
    python bench/bench_engine.py [--preset small] [--num-views 2 4 8] [--samples 1 8]
        [--device auto] [--dtype auto] [--compare-eager] [--repeats 3]
        [--output bench/results/bench_engine.md]
"""

from __future__ import annotations

import argparse
from pathlib import Path
import statistics
import sys

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / 'bench'))
    sys.path.insert(0, str(REPO_ROOT))

from bench_model import machine_description, peak_rss_mib, random_model, reset_peak_rss  # noqa
from raydiff_ros.estimation import ViewSetInput  # noqa: E402
from raydiff_ros.inference.engine import EngineConfig, RayDiffusionEngine  # noqa: E402
from raydiff_ros.model.checkpoint import load_model  # noqa: E402

DEFAULT_OUTPUT = REPO_ROOT / 'bench' / 'results' / 'bench_engine.md'
IMAGE_SIZE_WH = (640, 480)
FOCAL_PX = 500.0
STAGES = ('preprocess', 'features', 'sampling', 'rays_to_cameras', 'total')
MIB = 1024 * 1024


def view_set(num_views: int) -> tuple[list[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(0)
    width, height = IMAGE_SIZE_WH
    images = [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(num_views)]
    K = np.array([[FOCAL_PX, 0.0, width / 2], [0.0, FOCAL_PX, height / 2], [0.0, 0.0, 1.0]])
    return images, np.broadcast_to(K, (num_views, 3, 3)).copy()


def run_case(engine: RayDiffusionEngine, num_views: int, samples: int, repeats: int) -> dict:
    inputs = ViewSetInput(*view_set(num_views))
    cuda = engine.device.type == 'cuda'
    engine.estimate(inputs, num_samples=samples)  # warm-up for this shape
    if cuda:
        torch.cuda.reset_peak_memory_stats(engine.device)
    reset_peak_rss()
    runs = [engine.estimate(inputs, num_samples=samples).timings_s for _ in range(repeats)]
    row = {stage: statistics.median(run[stage] for run in runs) for stage in STAGES}
    row['peak_mib'] = (torch.cuda.max_memory_allocated(engine.device) / MIB if cuda
                       else peak_rss_mib())
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--preset', default='small', choices=('small', 'official'))
    parser.add_argument('--model', type=Path, default=None,
                        help='time this model folder (e.g. models/default) instead of a '
                        'randomly initialised preset')
    parser.add_argument('--num-views', type=int, nargs='+', default=[2, 4, 8])
    parser.add_argument('--samples', type=int, nargs='+', default=[1, 8])
    parser.add_argument('--device', default='auto')
    parser.add_argument('--dtype', default='auto')
    parser.add_argument('--compare-eager', action='store_true',
                        help='also time a plain fp32 engine and print the speed-up (CUDA)')
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--output', type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)

    model = load_model(args.model) if args.model else random_model(args.preset)
    engines = {'engine': RayDiffusionEngine(model, EngineConfig(
        device=args.device, dtype=args.dtype, warmup=True))}
    if args.compare_eager:
        engines['fp32 eager'] = RayDiffusionEngine(model, EngineConfig(
            device=args.device, dtype='float32', warmup=True))
    engine = engines['engine']
    what = f'model {args.model}' if args.model else f'preset {args.preset}'
    lines = [f'# bench_engine: {what}, device {engine.device}, '
             f'dtype {engine.dtype}', '', f'Machine: {machine_description()}', '',
             f'Images {IMAGE_SIZE_WH[0]}x{IMAGE_SIZE_WH[1]}, known K, median of '
             f'{args.repeats} runs, seconds.', '',
             '| engine | N | K | ' + ' | '.join(STAGES) + ' | peak MiB | speed-up |',
             '|---|---|---|' + '---|' * (len(STAGES) + 2)]
    for num_views in args.num_views:
        for samples in args.samples:
            rows = {name: run_case(e, num_views, samples, args.repeats)
                    for name, e in engines.items()}
            for name, row in rows.items():
                speedup = ''
                if name == 'engine' and 'fp32 eager' in rows:
                    speedup = f"{rows['fp32 eager']['total'] / row['total']:.1f}x"
                cells = ' | '.join(f'{row[s]:.3f}' for s in STAGES)
                peak = '' if row['peak_mib'] is None else f"{row['peak_mib']:.0f}"
                lines.append(f'| {name} | {num_views} | {samples} | {cells} | {peak} | '
                             f'{speedup} |')
                print(lines[-1], flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text('\n'.join(lines) + '\n')
    print('\n'.join(lines[:5]))
    print(f'wrote {args.output}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
