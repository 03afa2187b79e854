"""CPU benchmark of the ray-diffusion model, per stage, for the model presets.

Stages, for N images and K samples drawn in one batch:

* ``features``: DINOv2 features of the N images (once per image set, independent of K);
* ``one step``: one denoiser pass on (K, N) tokens (median of ``--repeats``);
* ``sampling``: the sampler from x_T to the x0 prediction at t = 29 (71 steps for the official
  preset, 8 for ``small``). For the official preset this is estimated as steps x one step
  unless ``--official-full-sampling`` is given (the real run takes minutes per case on 2 cores);
* ``end to end``: features + sampling;
* ``peak RSS``: the process's peak resident memory during the case (Linux ``VmHWM``, reset
  before each case through ``/proc/self/clear_refs``; weights included).

Weights are random (timing does not depend on their values). The default run (small preset,
N = 2, 4, 8, K = 1, 8; official preset N = 2, 4, 8, K = 1, one step extrapolated) takes a few
minutes on 2 cores. Results are printed and written as a markdown table (``--output``).

Usage: ``python bench/bench_model.py [--presets small official] [--num-images 2 4 8]
[--num-samples 1 8] [--official-num-samples 1] [--official-full-sampling] [--threads T]
[--output bench/results/bench_model.md]``
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import platform
import statistics
import sys
import time
from typing import Dict, List, Optional, Sequence

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from raydiff_ros.model.config import preset  # noqa: E402
from raydiff_ros.model.network import RayDiffusionModel  # noqa: E402

DEFAULT_OUTPUT = REPO_ROOT / 'bench' / 'results' / 'bench_model.md'
INIT_STD = 0.02
MIB = 1024 * 1024
KIB = 1024
RESET_PEAK_RSS = '5'  # /proc/<pid>/clear_refs: reset the peak resident set size


def machine_description() -> str:
    cpu = platform.processor() or 'unknown CPU'
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                cpu = line.split(':', 1)[1].strip()
                break
    except OSError:
        pass
    return (f'{cpu}; {os.cpu_count()} logical CPUs; torch {torch.__version__} with '
            f'{torch.get_num_threads()} threads; Python {platform.python_version()}')


def reset_peak_rss() -> None:
    try:
        Path('/proc/self/clear_refs').write_text(RESET_PEAK_RSS)
    except OSError:
        pass


def peak_rss_mib() -> Optional[float]:
    try:
        for line in Path('/proc/self/status').read_text().splitlines():
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) * KIB / MIB
    except OSError:
        return None
    return None


def random_model(name: str) -> RayDiffusionModel:
    model = RayDiffusionModel(preset(name)).eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * INIT_STD)
    return model


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_case(model: RayDiffusionModel, num_images: int, num_samples: int, repeats: int,
               full_sampling: bool) -> Dict[str, object]:
    cfg = model.config
    P = cfg.denoiser.num_patches
    size = cfg.backbone.image_size
    generator = torch.Generator().manual_seed(1)
    images = torch.rand((1, num_images, 3, size, size), generator=generator) * 2 - 1
    ndc = torch.rand((num_images, 2, P, P), generator=generator) * 2 - 1
    steps = [t for t in model.schedule.sampling_timesteps()
             if t >= cfg.diffusion.return_timestep]
    reset_peak_rss()
    with torch.no_grad():
        model.features(images[:, :1])  # warm-up
        features_s = timed(lambda: model.features(images))
        features = model.features(images)[0]
        batch_features = features.expand(num_samples, *features.shape)
        batch_ndc = ndc.expand(num_samples, *ndc.shape)
        x_t = torch.randn((num_samples, num_images, 6, P, P), generator=generator)
        model(batch_features, x_t, steps[0], batch_ndc)  # warm-up
        step_s = statistics.median(
            timed(lambda: model(batch_features, x_t, steps[0], batch_ndc))
            for _ in range(repeats))
        if full_sampling:
            sampling_s = timed(lambda: model.predict_rays(
                features, ndc, num_samples=num_samples, generator=generator))
        else:
            sampling_s = None
    estimated = step_s * len(steps)
    return {'N': num_images, 'K': num_samples, 'features_s': features_s, 'step_s': step_s,
            'steps': len(steps), 'sampling_s': sampling_s if full_sampling else estimated,
            'sampling_estimated': not full_sampling,
            'end_to_end_s': features_s + (sampling_s if full_sampling else estimated),
            'peak_rss_mib': peak_rss_mib()}


def markdown_table(rows: List[Dict[str, object]]) -> str:
    lines = ['| preset | N | K | features (s) | one step (s) | sampling to t=29 (s) | '
             'end to end (s) | peak RSS (MiB) |',
             '|---|---|---|---|---|---|---|---|']
    for row in rows:
        mark = ' (est.)' if row['sampling_estimated'] else ''
        rss = row['peak_rss_mib']
        lines.append(
            f"| {row['preset']} | {row['N']} | {row['K']} | {row['features_s']:.2f} | "
            f"{row['step_s']:.3f} | {row['sampling_s']:.2f}{mark} [{row['steps']} steps] | "
            f"{row['end_to_end_s']:.2f}{mark} | {'-' if rss is None else f'{rss:.0f}'} |")
    return '\n'.join(lines)


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--presets', nargs='+', default=['small', 'official'])
    parser.add_argument('--num-images', nargs='+', type=int, default=[2, 4, 8])
    parser.add_argument('--num-samples', nargs='+', type=int, default=[1, 8])
    parser.add_argument('--official-num-samples', nargs='+', type=int, default=[1],
                        help='K values for the official preset (each K=8 step takes minutes)')
    parser.add_argument('--official-full-sampling', action='store_true',
                        help='run the official sampler for real instead of extrapolating')
    parser.add_argument('--repeats', type=int, default=3, help='one-step timing repeats')
    parser.add_argument('--threads', type=int, default=None, help='torch threads')
    parser.add_argument('--output', type=Path, default=DEFAULT_OUTPUT)
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    machine = machine_description()
    print(f'machine: {machine}', flush=True)
    rows = []
    for name in args.presets:
        model = random_model(name)
        official = name == 'official'
        for num_images in args.num_images:
            for num_samples in (args.official_num_samples if official else args.num_samples):
                row = bench_case(model, num_images, num_samples, args.repeats,
                                 full_sampling=args.official_full_sampling or not official)
                row['preset'] = name
                rows.append(row)
                print(markdown_table([row]).splitlines()[-1], flush=True)
        del model
    report = (f'# Model benchmark (CPU)\n\nMachine: {machine}\n\n{markdown_table(rows)}\n\n'
              '(est.) = one step x number of steps. Peak RSS includes the weights.\n')
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report)
    print(f'\nwritten to {args.output}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
