"""raydiff-eval on folders of synthetic shards: one scene per view set (shard_source)."""

import json
from pathlib import Path

import numpy as np
from progress_recorder import RecordingProgress
import pytest

from raydiff_ros.cli.evaluate import main
from raydiff_ros.data.shards import ViewSetRecord, write_shard
from raydiff_ros.estimation import EstimationResult
from raydiff_ros.estimation.reference import GroundTruthEstimator
from raydiff_ros.evaluation import shard_source
from raydiff_ros.evaluation.datasets import write_poses_json
from raydiff_ros.evaluation.harness import HarnessConfig, HarnessError, run_evaluation
from raydiff_ros.evaluation.shard_source import ShardViewSetSource

IMAGE_WIDTH, IMAGE_HEIGHT = 16, 12
FOCAL_PX = 20.0
CAMERA_HEIGHT = 1.0
# Set j of a folder: scene type, number of views, ring radius (= its scene scale).
OBJECT_SETS = [('object', 8, 1.0), ('object', 8, 2.0), ('object', 8, 3.0)]
RIG_SETS = [('rig', 8, 0.5), ('rig', 8, 4.0)]
METRIC_KEYS = ('rotation_accuracy', 'camera_center_accuracy', 'rra', 'rta', 'auc')


def ring_view_set(look_at_cameras, scene_type: str, num_views: int, radius: float,
                  set_index: int) -> ViewSetRecord:
    """``num_views`` cameras evenly spaced on a level ring of ``radius`` looking at the origin,
    so the set's scene scale is exactly ``radius``; images encode (set, view) in their pixels."""
    azimuth = np.linspace(0.0, 2.0 * np.pi, num_views, endpoint=False) + 0.1 * set_index
    centers = np.stack([radius * np.cos(azimuth), radius * np.sin(azimuth),
                        np.full(num_views, CAMERA_HEIGHT)], axis=-1)
    R, t = look_at_cameras(centers, np.zeros(3))
    images = np.zeros((num_views, IMAGE_HEIGHT, IMAGE_WIDTH, 3), np.uint8)
    images[..., 0] = set_index
    images[..., 1] = np.arange(num_views)[:, None, None]
    K = np.array([[FOCAL_PX, 0.0, IMAGE_WIDTH / 2], [0.0, FOCAL_PX, IMAGE_HEIGHT / 2],
                  [0.0, 0.0, 1.0]])
    return ViewSetRecord(
        images=images,
        masks=np.zeros((num_views, IMAGE_HEIGHT, IMAGE_WIDTH), np.uint8),
        K=np.repeat(K[None], num_views, axis=0),
        R=R,
        t=t,
        bboxes=np.array([[float(v), 0.0, IMAGE_WIDTH, IMAGE_HEIGHT]  # x0 = view index
                         for v in range(num_views)]),
        metadata={'scene_type': scene_type, 'set_index': set_index},
    )


def write_shard_folder(folder: Path, look_at_cameras, shards, with_index: bool = True) -> Path:
    """Write ``shards`` (a list of lists of (scene type, views, radius)) as shard files."""
    entries, first = [], 0
    for k, specs in enumerate(shards):
        records = [ring_view_set(look_at_cameras, *spec, set_index=first + j)
                   for j, spec in enumerate(specs)]
        name = f'shard_{k:05d}.npz'
        write_shard(folder / name, records, {'shard_index': k})
        entries.append({'file': name, 'first_set': first, 'num_sets': len(specs)})
        first += len(specs)
    if with_index:
        (folder / 'index.json').write_text(json.dumps({'shards': entries}))
    return folder


@pytest.fixture
def shards(tmp_path, synth) -> Path:
    """Two shards: sets 0..2 object scenes, sets 3..4 rig scenes (radii in the specs above)."""
    return write_shard_folder(tmp_path / 'shards', synth.look_at_cameras,
                              [OBJECT_SETS[:2], OBJECT_SETS[2:] + RIG_SETS])


def run_cli(folder: Path, output: Path, *options: str) -> dict:
    assert main([str(folder), '--output', str(output), *options]) == 0
    return json.loads((output / 'results.json').read_text())


# --- raydiff-eval on shards -----------------------------------------------------------------


def test_oracle_scores_1_for_every_n_with_each_sets_own_scale(shards, tmp_path, capsys):
    content = run_cli(shards, tmp_path / 'eval', '--estimator', 'ground_truth', '--plot')
    assert content['dataset']['source_format'] == 'synthetic_shards'
    assert content['config']['sets_per_n'] is None  # every view set
    assert content['dataset']['view_sets_per_scene_type'] == {'object': 3, 'rig': 2}
    assert list(content['metrics_per_n']) == [str(n) for n in range(2, 9)]
    for metrics in content['metrics_per_n'].values():
        assert metrics['num_view_sets'] == 5  # every set without --sets-per-n
        for key in METRIC_KEYS:
            assert metrics[key] == 1.0, (key, metrics)
        assert metrics['rotation_accuracy_at_deg'] == {'5': 1.0, '15': 1.0}
    radii = [radius for _, _, radius in OBJECT_SETS + RIG_SETS]
    scenes = ['shard_00000.npz#0', 'shard_00000.npz#1', 'shard_00001.npz#0',
              'shard_00001.npz#1', 'shard_00001.npz#2']
    for view_set in content['view_sets']:
        position = scenes.index(view_set['scene'])
        assert view_set['scene_scale'] == pytest.approx(radii[position], rel=1e-12)
    assert (tmp_path / 'eval' / 'cameras.png').is_file()
    captured = capsys.readouterr()
    assert '| 8 | 5 | 100.0 | 100.0 | 100.0 | 100.0 | 100.0 |' in captured.out
    assert captured.err == ''  # no progress bar when stderr is not a terminal


def test_noisy_oracle_and_random_floor_on_shards(shards, tmp_path):
    noisy = run_cli(shards, tmp_path / 'noisy', '--estimator', 'noisy_oracle',
                    '--num-views', '8')['metrics_per_n']['8']
    assert noisy['rotation_accuracy'] == 1.0  # 5 degrees per camera: pairs within 10
    assert noisy['rotation_accuracy_at_deg']['5'] < 1.0
    floor = run_cli(shards, tmp_path / 'random', '--estimator', 'random',
                    '--num-views', '8')['metrics_per_n']['8']
    assert floor['rotation_accuracy'] < 0.5 and floor['camera_center_accuracy'] < 0.5


@pytest.mark.parametrize(('scene_type', 'expected'), [
    ('object', ['shard_00000.npz#0', 'shard_00000.npz#1', 'shard_00001.npz#0']),
    ('rig', ['shard_00001.npz#1', 'shard_00001.npz#2']),
])
def test_scene_type_filter_selects_the_right_sets(shards, tmp_path, scene_type, expected):
    content = run_cli(shards, tmp_path / scene_type, '--estimator', 'ground_truth',
                      '--num-views', '2,3', '--scene-type', scene_type)
    for n in (2, 3):
        scenes = [v['scene'] for v in content['view_sets'] if v['num_views'] == n]
        assert scenes == expected
    assert content['dataset']['scene_type'] == scene_type
    assert content['dataset']['num_selectable_view_sets'] == len(expected)


def test_sets_per_n_uses_the_first_sets_or_a_seeded_choice(shards):
    source = ShardViewSetSource(shards)
    names = [e.name for e in source.selected_entries(2, seed=0)]
    assert names == ['shard_00000.npz#0', 'shard_00000.npz#1']
    seeded = ShardViewSetSource(shards, set_choice='random')
    choices = {seed: [e.name for e in seeded.selected_entries(2, seed)] for seed in range(10)}
    assert all(choices[s] == [e.name for e in seeded.selected_entries(2, s)] for s in choices)
    assert len({tuple(c) for c in choices.values()}) > 1
    assert all(len(set(c)) == 2 for c in choices.values())


def test_progress_counts_the_selected_sets_of_every_n(shards):
    source = ShardViewSetSource(shards, scene_type='object')
    assert source.num_sets(None, seed=0) == 3 and source.num_sets(2, seed=0) == 2
    progress = RecordingProgress()
    result = run_evaluation(source, GroundTruthEstimator(),
                            HarnessConfig(num_views=(2, 3), sets_per_n=None), progress=progress)
    [bar] = progress.bars
    assert bar.total == bar.count == len(result.records) == 6


def test_views_are_seeded_distinct_and_independent_of_other_n(shards):
    def drawn(num_views, seed, config_views):
        result = run_evaluation(ShardViewSetSource(shards), GroundTruthEstimator(),
                                HarnessConfig(num_views=config_views, sets_per_n=None,
                                              seed=seed))
        return [(r.scene.name, r.indices) for r in result.records_for(num_views)]

    first = drawn(4, 0, (4,))
    assert first == drawn(4, 0, (2, 3, 4))
    assert first != drawn(4, 1, (4,))
    assert all(len(set(indices)) == 4 and max(indices) < 8 for _, indices in first)
    # Different sets get different view subsets for the same N and seed.
    assert len({indices for _, indices in first}) > 1


class PixelReader:
    """Records the images it is given and answers the (unused) identity cameras."""

    name = 'pixel_reader'

    def __init__(self):
        self.seen = []

    def estimate(self, view_set):
        self.seen.append((np.stack(view_set.image_list()), view_set.K))
        num = view_set.num_views
        centers = np.arange(3 * num, dtype=np.float64).reshape(num, 3) ** 2
        return EstimationResult.from_world_to_camera(np.repeat(np.eye(3)[None], num, 0),
                                                     -centers)


def test_images_and_intrinsics_come_from_the_drawn_set_read_lazily(shards, monkeypatch):
    reads = []
    original = shard_source.read_view_set
    monkeypatch.setattr(shard_source, 'read_view_set',
                        lambda path, index: reads.append((Path(path).name, index))
                        or original(path, index))
    shard_source._cached_read.cache_clear()
    source = ShardViewSetSource(shards)
    assert reads == []  # opening reads metadata only
    estimator = PixelReader()
    result = run_evaluation(source, estimator, HarnessConfig(num_views=(3,), sets_per_n=2))
    assert reads == [('shard_00000.npz', 0), ('shard_00000.npz', 1)]  # one read per set
    for (images, K), record in zip(estimator.seen, result.records, strict=True):
        set_index = int(record.scene.name.endswith('#1'))
        assert np.all(images[..., 0] == set_index)
        assert images[:, 0, 0, 1].tolist() == list(record.indices)
        np.testing.assert_array_equal(K, record.scene.K[list(record.indices)])


def test_shard_folder_without_index_is_read_in_file_order(tmp_path, synth):
    folder = write_shard_folder(tmp_path / 'plain', synth.look_at_cameras,
                                [RIG_SETS, OBJECT_SETS[:1]], with_index=False)
    names = [e.name for e in ShardViewSetSource(folder).entries]
    assert names == ['shard_00000.npz#0', 'shard_00000.npz#1', 'shard_00001.npz#0']


# --- bad inputs -----------------------------------------------------------------------------


def test_n_larger_than_the_views_of_a_set_is_a_clear_error(tmp_path, synth, capsys):
    folder = write_shard_folder(tmp_path / 'small', synth.look_at_cameras,
                                [[('object', 8, 1.0), ('rig', 4, 1.0)]])
    with pytest.raises(HarnessError, match=r'shard_00000.npz#1 .* has 4 views; cannot draw '
                                           r'N = 5'):
        run_evaluation(ShardViewSetSource(folder), GroundTruthEstimator(),
                       HarnessConfig(num_views=(2, 5), sets_per_n=None))
    assert main([str(folder), '--estimator', 'ground_truth', '--num-views', '2..8',
                 '--output', str(tmp_path / 'out')]) == 2
    assert 'has 4 views; cannot draw N = 8' in capsys.readouterr().err
    # The 4-view set is not selected by --scene-type object, so N = 8 works there.
    assert main([str(folder), '--estimator', 'ground_truth', '--num-views', '2..8',
                 '--scene-type', 'object', '--output', str(tmp_path / 'out')]) == 0


@pytest.mark.parametrize(('options', 'message'), [
    (['--scene-type', 'rig', '--sets-per-n', '3'], "has 2 view sets of scene type 'rig'; "
                                                    'cannot use 3 per N'),
    (['--scene-type', 'plane'], "invalid choice: 'plane'"),
])
def test_bad_shard_options_exit_with_2(shards, tmp_path, capsys, options, message):
    assert main([str(shards), '--estimator', 'ground_truth', '--output', str(tmp_path / 'o'),
                 *options]) == 2
    assert message in capsys.readouterr().err


def test_empty_and_broken_folders_exit_with_2(tmp_path, synth, capsys):
    (tmp_path / 'empty').mkdir()
    arguments = ['--estimator', 'ground_truth', '--output', str(tmp_path / 'out')]
    assert main([str(tmp_path / 'empty')] + arguments) == 2
    assert 'no dataset found' in capsys.readouterr().err
    (tmp_path / 'missing').mkdir()
    (tmp_path / 'missing' / 'index.json').write_text(json.dumps(
        {'shards': [{'file': 'shard_00000.npz', 'first_set': 0, 'num_sets': 1}]}))
    assert main([str(tmp_path / 'missing')] + arguments) == 2
    assert 'lists missing shards: shard_00000.npz' in capsys.readouterr().err
    folder = write_shard_folder(tmp_path / 'objects', synth.look_at_cameras, [OBJECT_SETS])
    assert main([str(folder), '--scene-type', 'rig'] + arguments) == 2
    assert "none of its 3 view sets has scene type 'rig'" in capsys.readouterr().err
    (folder / 'shard_00000.npz').write_bytes(b'not a zip')
    assert main([str(folder)] + arguments) == 2
    assert 'not a readable .npz file' in capsys.readouterr().err


def test_shard_options_are_refused_for_a_single_scene_dataset(tmp_path, synth, capsys):
    names = synth.write_images(tmp_path / 'data', 3)
    write_poses_json(tmp_path / 'data' / 'poses.json', names, synth.synthetic_K(3),
                     *synth.ring_cameras(3))
    assert main([str(tmp_path / 'data'), '--estimator', 'random', '--scene-type', 'rig',
                 '--output', str(tmp_path / 'out')]) == 2
    assert 'is not a shard folder' in capsys.readouterr().err


def test_object_sets_expose_their_object_boxes_in_view_order(shards):
    """Object-centric sets hand their boxes to estimators (in the view set's order); rig sets
    have none, so estimators crop the whole image as in training."""
    source = ShardViewSetSource(shards)
    seen = set()
    for view_set in source.draw(3, None, 0):
        scene_type = view_set.dataset.scene_type
        seen.add(scene_type)
        boxes = view_set.object_boxes
        if scene_type == 'rig':
            assert boxes is None
            continue
        stored = shard_source._read_set(view_set.dataset.shard_path,
                                        view_set.dataset.index_in_shard).bboxes
        np.testing.assert_array_equal(boxes, stored[list(view_set.indices)])
        np.testing.assert_array_equal(boxes[:, 0], view_set.indices)
    assert seen == {'object', 'rig'}


class InputRecorder(PixelReader):
    """Records the object boxes and the intrinsics it is given."""

    def __init__(self):
        super().__init__()
        self.boxes = []
        self.intrinsics = []

    def estimate(self, view_set):
        self.boxes.append(view_set.boxes)
        self.intrinsics.append(view_set.K)
        return super().estimate(view_set)


@pytest.mark.parametrize('object_boxes', [True, False])
def test_object_boxes_can_be_withheld_as_on_a_robot(shards, tmp_path, object_boxes):
    """``object_boxes=False`` (``raydiff-eval --no-boxes``) hands no boxes to the estimator,
    so it crops whole images as the node does; the default hands the object sets' boxes."""
    estimator = InputRecorder()
    result = run_evaluation(ShardViewSetSource(shards), estimator,
                            HarnessConfig(num_views=(3,), sets_per_n=None,
                                          object_boxes=object_boxes))
    object_records = [(boxes, record) for boxes, record in zip(estimator.boxes, result.records,
                                                               strict=True)
                      if record.scene.scene_type == 'object']
    assert len(object_records) == len(OBJECT_SETS)
    for boxes, record in object_records:
        if object_boxes:
            np.testing.assert_array_equal(boxes[:, 0], record.indices)
        else:
            assert boxes is None
    out = tmp_path / ('with' if object_boxes else 'without')
    args = [str(shards), '--estimator', 'random', '--num-views', '3', '--output', str(out)]
    assert main(args + ([] if object_boxes else ['--no-boxes'])) == 0
    written = json.loads((out / 'results.json').read_text())
    assert written['config']['object_boxes'] is object_boxes
    assert ('object boxes withheld' in (out / 'results.md').read_text()) is not object_boxes


@pytest.mark.parametrize('intrinsics_known', [True, False])
def test_intrinsics_are_withheld_by_the_harness_alone(shards, intrinsics_known):
    """The sources draw view sets with everything known; the harness withholds K (as it
    withholds boxes) when ``intrinsics_known`` is False, and hands each view's true K
    otherwise."""
    estimator = InputRecorder()
    result = run_evaluation(ShardViewSetSource(shards), estimator,
                            HarnessConfig(num_views=(3,), sets_per_n=None,
                                          intrinsics_known=intrinsics_known))
    assert len(estimator.intrinsics) == len(result.records) > 0
    for K, record in zip(estimator.intrinsics, result.records, strict=True):
        if intrinsics_known:
            true_K = record.scene.K[list(record.indices)]
            np.testing.assert_allclose(K, true_K)
        else:
            assert K is None
