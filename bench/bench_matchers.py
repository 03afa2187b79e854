"""Pair accuracy and warm time of each feature pipeline on the real evaluation scenes.

For each scene of ``../shared/data`` (or the paths given), ``--pairs`` random image pairs (seed
0): features of each method (:class:`raydiff_ros.features.local_features.FeatureMatcher`),
matches, poselib two-view geometry with the true intrinsics
(:func:`raydiff_ros.features.relative_pose.relative_pose`, default acceptance), and the
rotation error of the verified relative pose against the truth (an unverified pair counts as
failed). Printed and written to ``bench/results/matchers.md``: share of pairs within 15 deg
(and 5 deg) by true view angle, share verified, share of verified pairs within 15 deg, and
warm seconds per image (extraction) and per pair (matching, geometry).

    .venv/bin/python bench/bench_matchers.py [--pairs 40] [--methods xfeat,aliked,disk,sift]
        [--max-keypoints 1024] [--depth-confidence 0.95] [--cascades 'sift,xfeat;xfeat,aliked']

``--cascades``: pipelines tried in order on the same pairs (the first that verifies a pair
decides it, as ``fused``'s ``first_matcher`` then ``matcher``); each is scored from the
per-method rows, so its methods must be among ``--methods``.
"""

import argparse
from pathlib import Path
import platform
import sys
import time
from typing import Optional

from _results import write_table
import numpy as np
import torch

from raydiff_ros.evaluation.datasets import load_dataset
from raydiff_ros.features.local_features import FeatureMatcher, LocalFeaturesConfig
from raydiff_ros.features.relative_pose import relative_pose
from raydiff_ros.geometry.transforms import rotation_angle_deg

SHARED = Path(__file__).resolve().parents[2] / 'shared' / 'data'
BINS = ((0, 30), (30, 60), (60, 90), (90, 181))


def measure(method: str, scene: Path, num_pairs: int, max_keypoints: int,
            depth_confidence: Optional[float] = LocalFeaturesConfig.depth_confidence
            ) -> list[tuple]:
    """(true angle, error or inf, verified, extraction s, matching s, geometry s) per pair."""
    dataset = load_dataset(scene)
    rng = np.random.default_rng(0)
    pairs = [tuple(sorted(rng.choice(len(dataset), 2, replace=False)))
             for _ in range(num_pairs)]
    matcher = FeatureMatcher(LocalFeaturesConfig(method=method, max_keypoints=max_keypoints,
                                                 depth_confidence=depth_confidence))
    warm = dataset.load_image(0)
    matcher.match(matcher.extract(warm), matcher.extract(warm))
    cache: dict[int, tuple] = {}
    rows = []
    for i, j in pairs:
        for k in (i, j):
            if k not in cache:
                image = dataset.load_image(k)
                start = time.perf_counter()
                cache[k] = (matcher.extract(image), time.perf_counter() - start,
                            (image.shape[1], image.shape[0]))
        (fi, ti, size_i), (fj, tj, size_j) = cache[i], cache[j]
        start = time.perf_counter()
        index = matcher.match(fi, fj)
        middle = time.perf_counter()
        pose = relative_pose(i, j, fi.keypoints[index[:, 0]], fj.keypoints[index[:, 1]],
                             dataset.K[i], dataset.K[j], size_i, size_j)
        end = time.perf_counter()
        truth = dataset.R[j] @ dataset.R[i].T
        angle = float(rotation_angle_deg(truth, np.eye(3)))
        error = np.inf if pose is None else float(rotation_angle_deg(pose.R, truth))
        rows.append((angle, error, pose is not None, (ti + tj) / 2, middle - start,
                     end - middle))
    return rows


def cascade_row(scene: str, order: list[str], by_method: dict) -> str:
    """A table row of pipelines tried in ``order``: a pair goes to the first that verifies it."""
    decided = good = None
    for method in order:
        rows = by_method[method]
        verified, right = rows[:, 2] > 0, rows[:, 1] < 15
        if decided is None:
            decided, good = np.zeros(len(rows), bool), np.zeros(len(rows), bool)
        take = verified & ~decided
        good |= take & right
        decided |= take
    return (f'| {scene} | {", ".join(order)} | {good.mean():.3f} | {decided.mean():.2f} | '
            f'{int((decided & ~good).sum())} |')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('scenes', nargs='*', type=Path)
    parser.add_argument('--pairs', type=int, default=40)
    parser.add_argument('--methods', default='xfeat,aliked,disk,sift')
    parser.add_argument('--max-keypoints', type=int, default=1024)
    parser.add_argument('--depth-confidence', type=float,
                        default=LocalFeaturesConfig.depth_confidence,
                        help='LightGlue early stop (default: each release setting)')
    parser.add_argument('--cascades', default='', help="e.g. 'sift,xfeat;xfeat,aliked'")
    args = parser.parse_args()
    scenes = args.scenes or [SHARED / 'temple_ring', SHARED / 'nerf_lego']
    missing = [s for s in scenes if not s.exists()]
    if missing:
        print(f'no scene at {missing[0]} (../shared/data is absent)', file=sys.stderr)
        return 2
    lines = [f'machine: {platform.processor() or platform.machine()}, '
             f'{torch.get_num_threads()} torch threads, torch {torch.__version__}; '
             f'{args.pairs} pairs a scene, {args.max_keypoints} keypoints, 640 px, LightGlue '
             f'early stop {args.depth_confidence or "of each release"}', '',
             '| scene | method | acc@15 | acc@5 | 0-30 | 30-60 | 60-90 | >90 | verified | '
             'verified within 15 | extract s/img | match s/pair | geometry s/pair |',
             '|---|---|---|---|---|---|---|---|---|---|---|---|---|']
    cascade_lines = ['', '| scene | pipelines in order | acc@15 | verified | verified but wrong |',
                     '|---|---|---|---|---|']
    for scene in scenes:
        by_method = {}
        for method in args.methods.split(','):
            rows = np.array(measure(method, scene, args.pairs, args.max_keypoints,
                                    args.depth_confidence))
            by_method[method] = rows
            angle, error, verified = rows[:, 0], rows[:, 1], rows[:, 2] > 0
            by_bin = []
            for low, high in BINS:
                inside = (angle >= low) & (angle < high)
                by_bin.append(f'{np.mean(error[inside] < 15):.2f} ({inside.sum()})'
                              if inside.any() else '-')
            good = np.mean(error[verified] < 15) if verified.any() else float('nan')
            lines.append(
                f'| {scene.name} | {method} | {np.mean(error < 15):.2f} | '
                f'{np.mean(error < 5):.2f} | ' + ' | '.join(by_bin) +
                f' | {verified.mean():.2f} | {good:.2f} | {rows[:, 3].mean():.3f} | '
                f'{rows[:, 4].mean():.3f} | {rows[:, 5].mean():.3f} |')
            print(lines[-1], flush=True)
        for cascade in filter(None, args.cascades.split(';')):
            cascade_lines.append(cascade_row(scene.name, cascade.split(','), by_method))
            print(cascade_lines[-1], flush=True)
    if args.cascades:
        lines += cascade_lines
    write_table('matchers.md', lines, lines[0])
    return 0


if __name__ == '__main__':
    sys.exit(main())
