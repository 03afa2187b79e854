"""LightGlue's cross-attention on the CPU: kornia's own forward against the fused one.

The learned matchers of ``raydiff_ros.features.local_features`` run each LightGlue cross block
on the CPU with :func:`~raydiff_ros.features.local_features.cross_attention_sdpa`. This times,
side by side in one run, matching the same pairs of the ``bench_fused`` scene (8 views, 640 x
480; neighbours, second neighbours and two wide pairs: 15 pairs) with that forward and with
kornia's, per method, and counts the pairs whose matches are identical. Printed and written to
``bench/results/cross_attention.md``.

    .venv/bin/python bench/bench_cross_attention.py [--methods xfeat,aliked] [--runs 3]
        [--max-keypoints 1024]
"""

import argparse
import platform
import sys
import time

from _results import write_table
from bench_fused import view_set
import numpy as np
import torch

from raydiff_ros.features.local_features import FeatureMatcher, LocalFeaturesConfig


def timed_matches(matcher: FeatureMatcher, features: list, pairs: list, runs: int) -> tuple:
    """(median seconds per pair over ``runs`` passes, matches of each pair)."""
    matcher.match(features[0], features[1])  # warm
    seconds, found = [], []
    for _ in range(runs):
        start = time.perf_counter()
        found = [matcher.match(features[i], features[j]) for i, j in pairs]
        seconds.append((time.perf_counter() - start) / len(pairs))
    return float(np.median(seconds)), found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--methods', default='xfeat,aliked')
    parser.add_argument('--runs', type=int, default=3)
    parser.add_argument('--max-keypoints', type=int, default=1024)
    args = parser.parse_args()
    views = view_set(8)
    pairs = [(k, k + step) for step in (1, 2) for k in range(8 - step)] + [(0, 7), (1, 7)]
    header = (f'machine: {platform.processor() or platform.machine()}, CPU, '
              f'{torch.get_num_threads()} torch threads, torch {torch.__version__}; 640x480, '
              f'{args.max_keypoints} keypoints, {len(pairs)} pairs, median of {args.runs} passes')
    lines = [header, '', '| method | kornia s/pair | fused s/pair | speed-up | pairs with '
             'identical matches |', '|---|---:|---:|---:|---:|']
    for method in args.methods.split(','):
        matcher = FeatureMatcher(LocalFeaturesConfig(method=method, device='cpu',
                                                     max_keypoints=args.max_keypoints))
        features = [matcher.extract(image) for image in views.images]
        fused_s, fused = timed_matches(matcher, features, pairs, args.runs)
        for layer in matcher._matcher.transformers:
            layer.cross_attn.__dict__.pop('forward', None)  # kornia's own forward again
        plain_s, plain = timed_matches(matcher, features, pairs, args.runs)
        same = sum({tuple(p) for p in a} == {tuple(p) for p in b}
                   for a, b in zip(fused, plain, strict=True))
        lines.append(f'| {method} | {plain_s:.3f} | {fused_s:.3f} | {plain_s / fused_s:.2f} | '
                     f'{same} / {len(pairs)} |')
        print(lines[-1], flush=True)
    write_table('cross_attention.md', lines, header)
    return 0


if __name__ == '__main__':
    sys.exit(main())
