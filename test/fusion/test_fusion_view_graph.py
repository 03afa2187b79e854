"""verify_pairs on known correspondences: a true pair is verified, a hopeless one is a near
miss, and a first try (``near_misses=False``) does not spend a fit on a pair with fewer matches
than a verified pair needs; bridging_pairs picks the pairs between groups worth a second try;
turned_tries picks the best turn of each pair between groups by its gain."""

import numpy as np
from two_view_scene import SIZE, K, scene

from raydiff_ros.features.local_features import LocalFeatures
from raydiff_ros.features.relative_pose import RelativePose, TwoViewConfig, fit_relative_pose
from raydiff_ros.fusion import view_graph
from raydiff_ros.fusion.view_graph import ViewGraph, bridging_pairs, verify_pairs
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
    assert graph.match_counts == {(0, 1): 300, (0, 2): 30, (1, 2): 300}

    assert fitted == [(0, 1), (0, 2), (1, 2)]

    fitted.clear()
    first = verify_pairs(matcher, views, [(0, 1), (0, 2), (1, 2)], Ks, [SIZE] * 3, two_view,
                         near_misses=False)
    assert set(first.verified) == {(0, 1)} and not first.near_misses
    assert first.attempted == [(0, 1), (0, 2), (1, 2)]
    assert fitted == [(0, 1), (1, 2)]  # 30 matches cannot give the 40 inliers needed


def miss(i, j, inliers):
    points = np.zeros((inliers, 2))
    return RelativePose(i, j, np.eye(3), np.array([1.0, 0, 0]), 100, inliers, points, points)


def test_bridging_pairs_join_groups_near_misses_first_then_by_matches():
    # Views 0 and 1 are linked; 2 and 3 are alone. (0, 1) is verified, so never retried.
    graph = ViewGraph(num_views=4, attempted=[(0, 1), (0, 2), (0, 3), (1, 2), (2, 3), (0, 2)])
    graph.verified[(0, 1)] = miss(0, 1, 80)
    graph.near_misses.update({(1, 2): miss(1, 2, 20), (0, 3): miss(0, 3, 5)})
    graph.match_counts.update({(0, 1): 200, (0, 2): 10, (0, 3): 12, (1, 2): 50, (2, 3): 30})

    assert bridging_pairs(graph, min_inliers=15, max_pairs=4) == [(1, 2)]
    # Any pair between groups: (1, 2) 20 inliers, (0, 3) 5, then (2, 3) 30 matches, (0, 2) 10.
    assert bridging_pairs(graph, min_inliers=0, max_pairs=3) == [(0, 3), (1, 2), (2, 3)]
    assert bridging_pairs(graph, min_inliers=0, max_pairs=10) == [(0, 2), (0, 3), (1, 2), (2, 3)]

    graph.verified.update({(1, 2): miss(1, 2, 60), (2, 3): miss(2, 3, 60)})
    assert bridging_pairs(graph, min_inliers=0, max_pairs=10) == []  # one group


class TurnedFeatures(LocalFeatures):
    index: int = -1
    turn: int = 0


def turned_features(index, turn=0):
    found = TurnedFeatures(np.zeros((0, 2)), None, None, SIZE)
    object.__setattr__(found, 'index', index)
    object.__setattr__(found, 'turn', turn)
    return found


def test_turned_tries_take_the_best_turn_by_gain_and_skip_joined_pairs(monkeypatch):
    # Groups {0, 1}, {2}, {3}. Overlap scores: upright 100; the turns below score more.
    turned_scores = {(0, 2, 2): 200, (1, 2, 2): 150, (1, 3, 1): 120, (2, 3, 3): 105}
    right_turns = {(0, 2): (2, 2), (1, 3): (3, 1)}

    class ScoreMatcher:
        def similarity(self, a, b):
            if b.turn == 0:
                return 100
            return turned_scores.get((a.index, b.index, b.turn), 90)

    tried = []

    def fake_verify(matcher, features, pairs, K, sizes, two_view, graph):
        (pair,) = pairs
        turned = [(f.index, f.turn) for f in features if f.turn]
        tried.append((pair, turned))
        if turned == [right_turns.get(pair)]:
            graph.verified[pair] = miss(*pair, 60)
        return graph

    monkeypatch.setattr(view_graph, 'verify_pairs', fake_verify)
    views = [turned_features(k) for k in range(4)]

    def run(max_pairs, min_gain):
        tried.clear()
        graph = ViewGraph(num_views=4)
        graph.verified[(0, 1)] = miss(0, 1, 80)
        extracted = []

        def extract(view, turn):
            extracted.append((view, turn))
            return turned_features(view, turn)

        done = view_graph.turned_tries(ScoreMatcher(), views, extract, K, [SIZE] * 4,
                                       TwoViewConfig(), graph, max_pairs, min_gain)
        assert len(extracted) == len(set(extracted))  # each view and turn extracted once
        return done, graph

    done, graph = run(max_pairs=4, min_gain=1.1)
    # (0, 2) first (gain 2.0, joins view 2); (1, 2) is then inside one group; (1, 3) next
    # (1.2); (2, 3) turns view 3 (a tie of group sizes) but gains only 1.05.
    assert done == [(0, 2), (1, 3)]
    assert [turned for _, turned in tried] == [[(2, 2)], [(3, 1)]]
    assert graph.turns == {(0, 2): (2, 2), (1, 3): (3, 1)}
    assert run(max_pairs=1, min_gain=1.1)[0] == [(0, 2)]
    assert run(max_pairs=4, min_gain=1.3)[0] == [(0, 2)]
    assert run(max_pairs=0, min_gain=1.1)[0] == []
