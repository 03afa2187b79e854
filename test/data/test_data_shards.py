"""Shard files: round trip, deterministic bytes, validation and clear errors."""

import hashlib
import zipfile

import numpy as np
import pytest

from raydiff_ros.data.shards import (
    ShardError,
    ViewSetRecord,
    read_shard,
    read_shard_metadata,
    read_view_set,
    write_shard,
)


def make_record(seed: int, num_views: int = 3, size=(12, 10)) -> ViewSetRecord:
    rng = np.random.default_rng(seed)
    width, height = size
    angles = rng.uniform(0, 2 * np.pi, num_views)
    R = np.stack([[[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]]
                  for a in angles])
    return ViewSetRecord(
        images=rng.integers(0, 256, (num_views, height, width, 3), dtype=np.uint8),
        masks=rng.integers(0, 3, (num_views, height, width), dtype=np.uint8),
        K=np.repeat(np.array([[10.0, 0, 6], [0, 10.0, 5], [0, 0, 1]])[None], num_views, 0),
        R=R.astype(np.float64), t=rng.normal(size=(num_views, 3)),
        bboxes=np.tile([1.0, 2.0, 9.0, 8.0], (num_views, 1)),
        metadata={'scene_type': 'object', 'seed': seed},
    )


def test_round_trip_keeps_every_array_and_the_metadata(tmp_path):
    records = [make_record(1), make_record(2, num_views=2)]
    path = write_shard(tmp_path / 'shard.npz', records, {'seed': 5})
    metadata = read_shard_metadata(path)
    assert metadata['num_sets'] == 2 and metadata['seed'] == 5
    assert [s['num_views'] for s in metadata['sets']] == [3, 2]
    assert metadata['sets'][0]['image_size'] == [12, 10]
    for original, again in zip(records, read_shard(path), strict=True):
        for name in ('images', 'masks', 'K', 'R', 't', 'bboxes'):
            np.testing.assert_array_equal(getattr(again, name), getattr(original, name))
        assert again.scene_type == 'object'
    assert read_view_set(path, 1).num_views == 2


def test_same_content_gives_the_same_bytes(tmp_path):
    digests = []
    for name in ('a.npz', 'b.npz'):
        path = write_shard(tmp_path / name, [make_record(3)], {'seed': 1})
        digests.append(hashlib.sha256(path.read_bytes()).hexdigest())
    assert digests[0] == digests[1]
    path = write_shard(tmp_path / 'c.npz', [make_record(4)], {'seed': 1})
    assert hashlib.sha256(path.read_bytes()).hexdigest() != digests[0]


def test_invalid_records_are_rejected():
    good = make_record(0)
    with pytest.raises(ShardError, match='images'):
        ViewSetRecord(**{**good.__dict__, 'images': good.images.astype(np.float32)})
    with pytest.raises(ShardError, match='masks'):
        ViewSetRecord(**{**good.__dict__, 'masks': good.masks[:, :5]})
    with pytest.raises(ShardError, match='not a rotation'):
        ViewSetRecord(**{**good.__dict__, 'R': good.R * 2})
    bad_t = good.t.copy()
    bad_t[0, 0] = np.nan
    with pytest.raises(ShardError, match='non-finite'):
        ViewSetRecord(**{**good.__dict__, 't': bad_t})


def test_bad_files_raise_shard_errors(tmp_path):
    with pytest.raises(ShardError, match='not found'):
        read_shard_metadata(tmp_path / 'missing.npz')
    (tmp_path / 'junk.npz').write_bytes(b'not a zip')
    with pytest.raises(ShardError, match='not a readable'):
        read_shard_metadata(tmp_path / 'junk.npz')
    other = tmp_path / 'other.npz'
    np.savez(other, metadata=np.array('{"format": "something else"}'))
    with pytest.raises(ShardError, match='format'):
        read_shard_metadata(other)
    path = write_shard(tmp_path / 'ok.npz', [make_record(0)], {})
    with pytest.raises(ShardError, match='out of range'):
        read_view_set(path, 1)
    stripped = tmp_path / 'stripped.npz'
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(stripped, 'w') as target:
        for item in source.infolist():
            if not item.filename.endswith('/R.npy'):
                target.writestr(item, source.read(item))
    with pytest.raises(ShardError, match='lacks member'):
        read_view_set(stripped, 0)
    with pytest.raises(ShardError, match='at least one'):
        write_shard(tmp_path / 'none.npz', [], {})
