"""raydiff-import-official converts a release folder; raydiff-estimate runs on it end to end."""

import json

import numpy as np
from official_release import write_official_release
from PIL import Image
import pytest
import torch
import yaml

from raydiff_ros.cli import estimate as estimate_cli
from raydiff_ros.cli import import_official
from raydiff_ros.model.config import DenoiserConfig, RayDiffusionConfig
from raydiff_ros.model.network import RayDiffusionModel

IMAGE_SIZE_WH = (96, 64)


@pytest.fixture(scope='module')
def converted_model(tmp_path_factory):
    """A depth-1 model of the official shape, released officially, then imported."""
    torch.manual_seed(0)
    model = RayDiffusionModel(RayDiffusionConfig(denoiser=DenoiserConfig(depth=1))).eval()
    root = tmp_path_factory.mktemp('official')
    release = write_official_release(model, root / 'co3d_diffusion')
    assert import_official.main([str(release), str(root / 'converted')]) == 0
    return root / 'converted'


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for k in range(2):
        path = tmp_path / f'view{k}.png'
        width, height = IMAGE_SIZE_WH
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


@pytest.mark.slow  # 6 to 25 s on 2 cores, plus 1 to 4 s to convert the release
def test_estimate_end_to_end_on_an_imported_official_release(converted_model, images, tmp_path):
    width, height = IMAGE_SIZE_WH
    info = tmp_path / 'camera_info.yaml'
    info.write_text(yaml.safe_dump({
        'image_width': width, 'image_height': height,
        'camera_matrix': {'rows': 3, 'cols': 3,
                          'data': [80.0, 0.0, 48.0, 0.0, 80.0, 32.0, 0.0, 0.0, 1.0]}}))
    output, plot = tmp_path / 'out' / 'poses.json', tmp_path / 'out' / 'cameras.png'
    status = estimate_cli.main([*map(str, images), '--model', str(converted_model),
                                '--intrinsics', str(info), '--output', str(output),
                                '--plot', str(plot), '--device', 'cpu'])
    assert status == 0
    result = json.loads(output.read_text())
    assert result['format'] == estimate_cli.OUTPUT_FORMAT
    assert result['intrinsics_estimated'] is False
    cameras = result['cameras']
    assert [c['image'] for c in cameras] == [str(p) for p in images]
    np.testing.assert_allclose(cameras[0]['reference_T_camera'], np.eye(4), atol=1e-9)
    pose = np.asarray(cameras[1]['reference_T_camera'])
    np.testing.assert_allclose(np.linalg.norm(pose[:3, 3]), 1.0, rtol=1e-9)  # unit baseline
    np.testing.assert_allclose(pose @ np.asarray(cameras[1]['camera_T_reference']), np.eye(4),
                               atol=1e-9)
    assert cameras[1]['K'] == [[80.0, 0.0, 48.0], [0.0, 80.0, 32.0], [0.0, 0.0, 1.0]]
    assert plot.stat().st_size > 0 and plot.read_bytes()[:4] == b'\x89PNG'


def test_estimate_reports_bad_inputs(converted_model, images, tmp_path, capsys):
    output = str(tmp_path / 'poses.json')
    info = tmp_path / 'camera_info.yaml'
    info.write_text(yaml.safe_dump({'image_width': 640, 'image_height': 480,
                                    'camera_matrix': {'data': [500, 0, 320, 0, 500, 240,
                                                               0, 0, 1]}}))
    assert estimate_cli.main([str(images[0]), str(images[1]), '--model', str(converted_model),
                              '--intrinsics', str(info), '--output', output]) == 2
    assert 'calibrated for 640x480' in capsys.readouterr().err
    broken = tmp_path / 'broken.png'
    broken.write_bytes(b'not an image')
    assert estimate_cli.main([str(images[0]), str(broken), '--model', str(converted_model),
                              '--output', output]) == 1
    assert 'cannot read image' in capsys.readouterr().err
    assert estimate_cli.main([str(images[0]), str(images[1]), '--model',
                              str(tmp_path / 'nowhere'), '--output', output]) == 2
    assert 'error' in capsys.readouterr().err


def test_any_pixel_estimator_of_the_registry_runs_and_says_where_poses_came_from(images,
                                                                                   tmp_path):
    output, plot = tmp_path / 'poses.json', tmp_path / 'cameras.png'
    assert estimate_cli.main([str(p) for p in images] + [
        '--estimator', 'random', '--output', str(output), '--plot', str(plot)]) == 0
    payload = json.loads(output.read_text())
    assert payload['estimator'] == 'random' and payload['model'] is None
    assert [c['pose_source'] for c in payload['cameras']] == ['reference', 'random']
    assert [c['K'] for c in payload['cameras']] == [None, None]  # random reports none
    assert plot.read_bytes().startswith(b'\x89PNG')               # frustums of a guessed K
    assert estimate_cli.main([str(p) for p in images] + [
        '--estimator', 'ground_truth', '--output', str(output)]) == 2  # needs the truth
