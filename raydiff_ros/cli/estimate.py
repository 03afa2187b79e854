"""``raydiff-estimate``: estimate the cameras of 2..N images, without ROS.

    raydiff-estimate IMAGE... [--intrinsics FILE] [--estimator ray_diffusion] [--model DIR]
                     [--refinement none] --output poses.json [--plot cameras.png]
                     [--samples K] [--device auto] [--dtype auto]

Any estimator of the registry that works from pixels (default ``ray_diffusion``). Writes
``poses.json`` (format ``raydiff_ros.estimate.v1``): per image, the pose of its camera's
optical frame in the first camera's optical frame (``reference_T_camera``, 4x4, OpenCV/ROS axes
x right, y down, z forward), the inverse (world-to-camera R, t with the world = camera 0), the
intrinsics used or estimated (null when the estimator reports none), where the pose came from,
and the spread of the samples. Translations are in the estimator's unit (ray models: mean
distance of the other cameras from camera 0 = 1): no metric scale.
"""

import argparse
import json
from pathlib import Path
import sys
from typing import Optional, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from raydiff_ros.cli.common import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USAGE,
    add_option_argument,
    estimator_help,
    estimator_name,
    parse_arguments,
    report_error,
)
from raydiff_ros.estimation import (
    DEFAULT_ESTIMATOR,
    REFINEMENTS,
    EstimationError,
    EstimationResult,
    EstimatorError,
    EstimatorOptions,
    ViewSetInput,
    create_estimator,
    sample_spread,
)
from raydiff_ros.features.matching import guess_intrinsics
from raydiff_ros.geometry.transforms import invert_transforms
from raydiff_ros.inference.intrinsics_file import IntrinsicsFileError, load_intrinsics

PROGRAM_NAME = 'raydiff-estimate'
OUTPUT_FORMAT = 'raydiff_ros.estimate.v1'
FRUSTUM_DEPTH = 0.3
"""Depth of the plotted frustums, reference units."""


def load_rgb(path: Path) -> np.ndarray:
    """Read an image file as (H, W, 3) uint8 RGB (alpha dropped, grey expanded)."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert('RGB'))
    except (OSError, UnidentifiedImageError) as error:
        raise EstimationError(f'cannot read image {path}: {error}') from error


def result_to_json(result: EstimationResult, image_paths: Sequence[Path],
                   estimator_name: str, model_name: Optional[str] = None) -> dict:
    """The ``raydiff_ros.estimate.v1`` document of a result for the given image files."""
    cameras = []
    camera_T_reference = invert_transforms(result.reference_T_camera)
    rotation_spread, center_spread = sample_spread(result.samples_reference_T_camera,
                                                   result.reference_T_camera)
    for k, path in enumerate(image_paths):
        cameras.append({
            'image': str(path),
            'reference_T_camera': result.reference_T_camera[k].tolist(),
            'camera_T_reference': camera_T_reference[k].tolist(),
            'R': camera_T_reference[k, :3, :3].tolist(),
            't': camera_T_reference[k, :3, 3].tolist(),
            'K': None if result.K is None else result.K[k].tolist(),
            'pose_source': result.pose_sources[k],
            'rotation_spread_deg': float(rotation_spread[k]),
            'center_spread': float(center_spread[k]),
        })
    return {
        'format': OUTPUT_FORMAT,
        'reference_frame': 'optical frame of the first image (x right, y down, z forward)',
        'translation_units': "the estimator's (ray models: mean distance of cameras 1..N-1 "
                             'from camera 0)',
        'estimator': estimator_name,
        'model': model_name,
        'num_samples': result.num_samples,
        'intrinsics_estimated': bool(result.intrinsics_estimated),
        'cameras': cameras,
        'timings_s': result.timings_s,
    }


def plot_result(result: EstimationResult, K: np.ndarray, image_sizes: np.ndarray, path: Path,
                title: str) -> Path:
    from raydiff_ros.evaluation.plotting import (
        PREDICTION_COLOR,
        PREDICTION_WIDTH,
        CameraSetStyle,
        frustum_corners_world,
        plot_camera_sets,
    )
    R, t = result.world_to_camera()
    corners = frustum_corners_world(K, R, t, image_sizes, FRUSTUM_DEPTH)
    centers = result.reference_T_camera[:, :3, 3]
    return plot_camera_sets(
        [CameraSetStyle(corners, centers, PREDICTION_COLOR, 'estimate', PREDICTION_WIDTH)],
        path, title)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM_NAME, description='Estimate the relative camera poses of 2..N images '
        'with ray diffusion (no ROS needed).')
    parser.add_argument('images', nargs='+', type=Path, metavar='IMAGE')
    parser.add_argument('--intrinsics', type=Path, metavar='FILE',
                        help='YAML/JSON with K for all images, per image, or a ROS camera_info '
                             'YAML; without it the intrinsics are estimated')
    parser.add_argument('--estimator', default=DEFAULT_ESTIMATOR, metavar='NAME',
                        type=estimator_name(include_ground_truth=False),
                        help=estimator_help(include_ground_truth=False)
                        + f' (default {DEFAULT_ESTIMATOR})')
    add_option_argument(parser)
    parser.add_argument('--refinement', default='none', choices=tuple(REFINEMENTS),
                        help='refinement after the estimator (guided: ray_diffusion only)')
    parser.add_argument('--model', type=Path, metavar='DIR',
                        help="learned estimators: model folder (default: the estimator's "
                             'shipped model under models/; ray_diffusion: $RAYDIFF_MODEL_DIR '
                             'first)')
    parser.add_argument('--output', type=Path, required=True, metavar='poses.json')
    parser.add_argument('--plot', type=Path, metavar='cameras.png')
    parser.add_argument('--samples', type=int, default=1, metavar='K',
                        help='diffusion samples drawn in one batch (uncertainty needs >= 2)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--device', default='auto', help='auto, cpu, cuda or cuda:N')
    parser.add_argument('--dtype', default='auto',
                        help='auto, float32, bfloat16 or float16 (network precision)')
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parse_arguments(parser, argv)
    if isinstance(args, int):
        return args
    try:
        images = [load_rgb(path) for path in args.images]
        sizes = np.array([[im.shape[1], im.shape[0]] for im in images])
        K = None if args.intrinsics is None else load_intrinsics(args.intrinsics,
                                                                 [tuple(s) for s in sizes])
        estimator = create_estimator(args.estimator, EstimatorOptions(
            seed=args.seed, model_dir=args.model, device=args.device, dtype=args.dtype,
            num_samples=args.samples, refinement=args.refinement, warmup=False,
            extra=dict(args.options)))
        result = estimator.estimate(ViewSetInput(images, K))
    except (EstimationError, IntrinsicsFileError, EstimatorError, ValueError) as error:
        code = EXIT_FAILURE if isinstance(error, EstimationError) else EXIT_USAGE
        return report_error(PROGRAM_NAME, error, code)
    model_name = getattr(getattr(estimator, 'base', estimator), 'model_name', None)
    payload = result_to_json(result, args.images, estimator.name, model_name)
    try:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(payload, indent=2) + '\n')
        if args.plot is not None:
            plot_K = result.K if result.K is not None else K
            if plot_K is None:  # an estimator that reports none (random): frustums of a guess
                plot_K = np.stack([guess_intrinsics(width, height) for width, height in sizes])
            plot_result(result, plot_K, sizes, args.plot,
                        f'{PROGRAM_NAME}: {len(images)} views')
    except OSError as error:
        return report_error(PROGRAM_NAME, f'cannot write output: {error}', EXIT_FAILURE)
    for camera in payload['cameras']:
        x, y, z = np.asarray(camera['reference_T_camera'])[:3, 3]
        print(f"{camera['image']}: position in camera 0 frame ({x:+.3f}, {y:+.3f}, {z:+.3f}), "
              f"rotation spread {camera['rotation_spread_deg']:.2f} deg")
    print(f'wrote {args.output}' + (f' and {args.plot}' if args.plot else ''))
    return EXIT_OK


if __name__ == '__main__':
    sys.exit(main())
