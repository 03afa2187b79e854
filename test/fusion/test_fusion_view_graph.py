"""verify_pairs on known correspondences: a true pair is verified, a hopeless one is a near
miss, and a first try (``near_misses=False``) does not spend a fit on a pair with fewer matches
than a verified pair needs."""

import numpy as np
from two_view_scene import SIZE, K, scene

from raydiff_ros.features.local_features import LocalFeatures
from raydiff_ros.features.relative_pose import TwoViewConfig, fit_relative_pose
from raydiff_ros.fusion import view_graph
from raydiff_ros.fusion.view_graph import verify_pairs
from raydiff_ros.geometry.transforms import rotation_angle_deg


class ListMatcher:
    """Matches are given: index pairs by image pair."""

    def __init__(self, matches):
        self.matches = matches
        self.calls = []

    def match(self, a, b):
        pair = (a.index, b.index)
        self.calls.append(pair)
        return self.matches[pair]


class IndexedFeatures(LocalFeatures):
    index: int = -1


def features(index, keypoints):
    found = IndexedFeatures(keypoints, None, None, SIZE)
    object.__setattr__(found, 'index', index)
    return found


def test_first_tries_skip_fits_that_cannot_verify(monkeypatch):
    fitted = []

    def counting(i, j, *args):
        fitted.append((i, j))
        return fit_relative_pose(i, j, *args)

    monkeypatch.setattr(view_graph, 'fit_relative_pose', counting)
    first, second, R, _, _ = scene(outlier_share=0.1, seed=2)
    rng = np.random.default_rng(2)
    views = [features(0, first), features(1, second),
             features(2, rng.uniform([0, 0], SIZE, size=(300, 2)))]
    every = np.stack([np.arange(300)] * 2, axis=1)
    matcher = ListMatcher({(0, 1): every, (0, 2): every[:30], (1, 2): every})
    Ks = np.repeat(K[None], 3, axis=0)
    two_view = TwoViewConfig()
    graph = verify_pairs(matcher, views, [(0, 1), (0, 2), (1, 2)], Ks, [SIZE] * 3, two_view)
    assert set(graph.verified) == {(0, 1)}
    assert rotation_angle_deg(graph.verified[(0, 1)].R, R) < 0.5
    assert set(graph.near_misses) == {(0, 2), (1, 2)}  # fitted, not accepted

    assert fitted == [(0, 1), (0, 2), (1, 2)]

    fitted.clear()
    first = verify_pairs(matcher, views, [(0, 1), (0, 2), (1, 2)], Ks, [SIZE] * 3, two_view,
                         near_misses=False)
    assert set(first.verified) == {(0, 1)} and not first.near_misses
    assert first.attempted == [(0, 1), (0, 2), (1, 2)]
    assert fitted == [(0, 1), (1, 2)]  # 30 matches cannot give the 40 inliers needed
