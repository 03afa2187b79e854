"""Dataset loaders: synthetic folders in tmp_path, the shared data, and corrupt inputs."""

import json
import math

import numpy as np
from PIL import Image
import pytest

from raydiff_ros.evaluation.datasets import (
    DatasetError,
    detect_format,
    load_dataset,
    load_rgb_image,
    write_poses_json,
)

# --- our own format -------------------------------------------------------------------------


@pytest.fixture
def own_format_folder(tmp_path, synth):
    names = synth.write_images(tmp_path / 'images', 4)
    R, t = synth.ring_cameras(4)
    K = synth.synthetic_K(4)
    write_poses_json(tmp_path / 'poses.json', [f'images/{n}' for n in names], K, R, t,
                     name='tiny')
    return tmp_path, K, R, t


def test_own_format_round_trip(own_format_folder, synth):
    folder, K, R, t = own_format_folder
    dataset = load_dataset(folder)
    assert dataset.name == 'tiny' and dataset.source_format == 'raydiff_poses'
    assert len(dataset) == 4
    np.testing.assert_allclose(dataset.K, K)
    np.testing.assert_allclose(dataset.R, R, atol=1e-12)
    np.testing.assert_allclose(dataset.t, t)
    np.testing.assert_array_equal(dataset.image_sizes, np.tile(synth.image_size, (4, 1)))
    image = dataset.load_image(2)
    assert image.dtype == np.uint8 and image.shape == (48, 64, 3)
    np.testing.assert_array_equal(image, np.asarray(Image.open(folder / 'images' / '0002.png')))
    # The file itself is accepted too, and the scale is that of all cameras.
    assert detect_format(folder / 'poses.json') == ('raydiff_poses', folder / 'poses.json')
    centers = -np.einsum('nji,nj->ni', R, t)
    expected_scale = np.linalg.norm(centers - centers.mean(0), axis=1).max()
    assert dataset.scene_scale == pytest.approx(expected_scale)


def test_dataset_arrays_are_read_only(own_format_folder):
    dataset = load_dataset(own_format_folder[0])
    with pytest.raises(ValueError):
        dataset.R[0, 0, 0] = 2.0


@pytest.mark.parametrize(
    ('mutate', 'message'),
    [
        (lambda d: d.update(format='other'), 'format'),
        (lambda d: d.update(cameras=[]), 'non-empty "cameras"'),
        (lambda d: d['cameras'][1].pop('K'), r"missing keys \['K'\]"),
        (lambda d: d['cameras'][0].update(R=(2 * np.eye(3)).tolist()), 'not a rotation'),
        (lambda d: d['cameras'][0].update(R=np.diag([1.0, 1, -1]).tolist()), 'not a rotation'),
        (lambda d: d['cameras'][0].update(t=[1, 2]), r'shape \(3,\)'),
        (lambda d: d['cameras'][0].update(K=[[0, 0, 1], [0, 1, 1], [0, 0, 1]]), 'positive'),
        (lambda d: d['cameras'][2].update(image='images/missing.png'), 'does not exist'),
    ],
)
def test_own_format_errors_name_the_problem(own_format_folder, mutate, message):
    folder = own_format_folder[0]
    content = json.loads((folder / 'poses.json').read_text())
    mutate(content)
    (folder / 'poses.json').write_text(json.dumps(content))
    with pytest.raises(DatasetError, match=message):
        load_dataset(folder)


def test_invalid_json_and_corrupt_image(own_format_folder):
    folder = own_format_folder[0]
    (folder / 'images' / '0001.png').write_bytes(b'not a png at all')
    with pytest.raises(DatasetError, match='0001.png'):
        load_dataset(folder)
    (folder / 'poses.json').write_text('{"format": ')
    with pytest.raises(DatasetError, match='not valid JSON'):
        load_dataset(folder)


def test_image_truncated_after_loading_is_reported(own_format_folder):
    folder = own_format_folder[0]
    dataset = load_dataset(folder)
    data = (folder / 'images' / '0003.png').read_bytes()
    (folder / 'images' / '0003.png').write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match='cannot decode image .*0003.png'):
        dataset.load_image(3)
    with pytest.raises(IndexError):
        dataset.load_image(4)


# --- format detection -----------------------------------------------------------------------


def test_detection_errors(tmp_path):
    with pytest.raises(DatasetError, match='does not exist'):
        load_dataset(tmp_path / 'nothing')
    with pytest.raises(DatasetError, match='no dataset found'):
        load_dataset(tmp_path)
    (tmp_path / 'a_par.txt').write_text('0\n')
    (tmp_path / 'b_par.txt').write_text('0\n')
    with pytest.raises(DatasetError, match='several parameter files'):
        load_dataset(tmp_path)
    (tmp_path / 'notes.txt').write_text('hello')
    with pytest.raises(DatasetError, match='unknown dataset file'):
        load_dataset(tmp_path / 'notes.txt')


# --- Middlebury -----------------------------------------------------------------------------


def middlebury_line(name, K, R, t):
    return ' '.join([name] + [repr(float(v)) for v in np.concatenate([K.ravel(), R.ravel(), t])])


def test_middlebury_synthetic(tmp_path, synth):
    names = synth.write_images(tmp_path, 3)
    R, t = synth.ring_cameras(3)
    K = synth.synthetic_K(3)
    lines = ['3'] + [middlebury_line(n, K[i], R[i], t[i]) for i, n in enumerate(names)]
    (tmp_path / 'scene_par.txt').write_text('\n'.join(lines) + '\n')
    dataset = load_dataset(tmp_path)
    assert dataset.source_format == 'middlebury' and len(dataset) == 3
    np.testing.assert_allclose(dataset.R, R, atol=1e-12)
    np.testing.assert_allclose(dataset.t, t)
    np.testing.assert_allclose(dataset.K, K)
    # Count mismatch and a short line.
    (tmp_path / 'scene_par.txt').write_text('\n'.join(['4'] + lines[1:]) + '\n')
    with pytest.raises(DatasetError, match='header says 4 images but 3'):
        load_dataset(tmp_path)
    lines[2] = lines[2].rsplit(' ', 1)[0]
    (tmp_path / 'scene_par.txt').write_text('\n'.join(lines) + '\n')
    with pytest.raises(DatasetError, match='scene_par.txt:3: expected 22 fields'):
        load_dataset(tmp_path)


# --- NeRF -----------------------------------------------------------------------------------


def write_nerf(folder, frames):
    meta = {'camera_angle_x': math.radians(60), 'frames': frames}
    (folder / 'transforms.json').write_text(json.dumps(meta))


def test_nerf_conversion_of_a_hand_placed_camera(tmp_path):
    # An OpenGL camera at (0, 0, 4) with identity rotation looks down world -z, with world +y
    # up in its image. In OpenCV axes: R = diag(1, -1, -1), t = (0, 0, 4).
    (tmp_path / 'images').mkdir()
    Image.fromarray(np.zeros((30, 40, 4), np.uint8)).save(tmp_path / 'images' / 'a.png')
    c2w = np.eye(4)
    c2w[2, 3] = 4.0
    write_nerf(tmp_path, [{'file_path': './images/a', 'transform_matrix': c2w.tolist()}])
    dataset = load_dataset(tmp_path / 'transforms.json')
    assert dataset.source_format == 'nerf'
    np.testing.assert_allclose(dataset.R[0], np.diag([1.0, -1.0, -1.0]), atol=1e-12)
    np.testing.assert_allclose(dataset.t[0], [0.0, 0.0, 4.0], atol=1e-12)
    focal = 0.5 * 40 / math.tan(math.radians(30))
    np.testing.assert_allclose(dataset.K[0], [[focal, 0, 20], [0, focal, 15], [0, 0, 1]])

    def project(point):
        x = dataset.K[0] @ (dataset.R[0] @ point + dataset.t[0])
        return x[:2] / x[2]

    np.testing.assert_allclose(project(np.zeros(3)), [20, 15])
    assert project(np.array([1.0, 0, 0]))[0] > 20  # world +x is to the right
    assert project(np.array([0.0, 1, 0]))[1] < 15  # world +y is up in the image


def test_nerf_alpha_is_composited_onto_the_background(tmp_path):
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = [10, 20, 30, 0]
    rgba[0, 1] = [10, 20, 30, 255]
    rgba[1, 0] = [200, 100, 50, 128]
    Image.fromarray(rgba).save(tmp_path / 'x.png')
    write_nerf(tmp_path, [{'file_path': 'x.png', 'transform_matrix': np.eye(4).tolist()}])
    dataset = load_dataset(tmp_path, background_rgb=(0, 0, 255))
    image = dataset.load_image(0)
    assert image.shape == (2, 2, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(image[0, 0], [0, 0, 255])
    np.testing.assert_array_equal(image[0, 1], [10, 20, 30])
    # (200 * 128 + 0 * 127) / 255 = 100.39; (50 * 128 + 255 * 127) / 255 = 152.1
    np.testing.assert_array_equal(image[1, 0], [100, 50, 152])
    np.testing.assert_array_equal(load_rgb_image(tmp_path / 'x.png')[0, 0], [255, 255, 255])


@pytest.mark.parametrize(
    ('meta', 'message'),
    [
        ({'camera_angle_x': 1.0}, 'non-empty "frames"'),
        ({'camera_angle_x': 1.0, 'frames': [{'file_path': 'x.png'}]}, 'transform'),
        ({'frames': [{'file_path': 'x.png', 'transform_matrix': np.eye(4).tolist()}]},
         'camera_angle_x'),
        ({'camera_angle_x': 1.0,
          'frames': [{'file_path': 'x.png', 'transform_matrix': (2 * np.eye(4)).tolist()}]},
         'last row'),
        ({'camera_angle_x': 1.0, 'frames': [{'file_path': 'gone.png',
                                             'transform_matrix': np.eye(4).tolist()}]},
         'does not exist'),
    ],
)
def test_nerf_errors_name_the_problem(tmp_path, meta, message):
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(tmp_path / 'x.png')
    (tmp_path / 'transforms.json').write_text(json.dumps(meta))
    with pytest.raises(DatasetError, match=message):
        load_dataset(tmp_path)


# --- the shared data ------------------------------------------------------------------------


def test_shared_temple_ring(shared_dir):
    dataset = load_dataset(shared_dir / 'data' / 'temple_ring')
    assert dataset.source_format == 'middlebury' and len(dataset) == 47
    assert dataset.image_paths[0].name == 'templeR0001.png'
    # First line of templeR_par.txt.
    np.testing.assert_allclose(dataset.K[0], [[1520.4, 0, 302.32], [0, 1525.9, 246.87],
                                              [0, 0, 1]])
    np.testing.assert_allclose(dataset.t[0], [-0.0292149526928, -0.0241923869131, 0.52269561933])
    np.testing.assert_allclose(dataset.R[0, 0], [0.021875982212950, 0.983296808862131,
                                                 -0.180689863683567], atol=1e-9)
    np.testing.assert_array_equal(np.unique(dataset.image_sizes, axis=0), [[640, 480]])
    assert dataset.load_image(0).shape == (480, 640, 3)
    # The cameras ring the small object: every optical axis points near the centre of the ring.
    centers = dataset.camera_centers
    to_center = centers.mean(axis=0) - centers
    to_center /= np.linalg.norm(to_center, axis=1, keepdims=True)
    assert np.einsum('ni,ni->n', dataset.R[:, 2], to_center).min() > 0.95


def test_shared_nerf_lego(shared_dir):
    dataset = load_dataset(shared_dir / 'data' / 'nerf_lego', background_rgb=(0, 0, 0))
    assert dataset.source_format == 'nerf' and len(dataset) == 40
    meta = json.loads((shared_dir / 'data' / 'nerf_lego' / 'transforms.json').read_text())
    focal = 0.5 * 800 / math.tan(meta['camera_angle_x'] / 2)
    np.testing.assert_allclose(dataset.K[:, 0, 0], focal)
    np.testing.assert_allclose(dataset.K[:, :2, 2], 400.0)
    # Blender cameras all look at the world origin: it projects to the image centre.
    origin = np.einsum('nij,nj->ni', dataset.K, dataset.t)
    np.testing.assert_allclose(origin[:, :2] / origin[:, 2:], 400.0, atol=1e-3)
    # Camera centres equal the translation column of the camera-to-world matrices.
    c2w = np.array([f['transform_matrix'] for f in meta['frames']])
    np.testing.assert_allclose(dataset.camera_centers, c2w[:, :3, 3], atol=1e-6)
    # Transparent pixels take the background colour.
    raw = np.asarray(Image.open(dataset.image_paths[0]))
    image = dataset.load_image(0)
    transparent = raw[..., 3] == 0
    assert transparent.any() and image.shape == (800, 800, 3)
    assert np.all(image[transparent] == 0)

