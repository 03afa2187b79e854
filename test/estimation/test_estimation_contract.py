"""The estimator contract (ViewSetInput, EstimationResult) and the registry's own behaviour."""

from dataclasses import dataclass
from typing import Optional

import numpy as np
import pytest

from raydiff_ros.estimation import (
    REFINEMENTS,
    EstimationError,
    EstimationResult,
    EstimatorError,
    EstimatorOptions,
    GroundTruth,
    PoseEstimator,
    RefinementError,
    ViewSetInput,
    available_estimators,
    create_estimator,
    estimator_entry,
    medoid_index,
    parse_option,
    parse_options,
    sample_spread,
    typed_options,
    with_refinement,
)
from raydiff_ros.geometry.transforms import (
    axis_angle_rotations,
    invert_transforms,
    make_transforms,
    random_rotations,
)

IMAGES = [np.zeros((4, 6, 3), np.uint8)] * 3
K = np.array([[5.0, 0.0, 3.0], [0.0, 5.0, 2.0], [0.0, 0.0, 1.0]])


def random_poses(rng, num):
    return make_transforms(random_rotations(rng, num), rng.normal(size=(num, 3)))


# --- ViewSetInput ---------------------------------------------------------------------------


def test_a_single_intrinsics_matrix_is_taken_for_every_view():
    inputs = ViewSetInput(IMAGES, K)
    assert inputs.num_views == 3 and inputs.K.shape == (3, 3, 3)
    np.testing.assert_array_equal(inputs.K[2], K)
    assert ViewSetInput(IMAGES).K is None and ViewSetInput(IMAGES).ground_truth is None


@pytest.mark.parametrize('kwargs, message', [
    ({'images': IMAGES[:1]}, 'at least 2 images'),
    ({'K': np.stack([K] * 2)}, r'K must be \(3, 3\) or \(3, 3, 3\)'),
    ({'K': np.where(np.eye(3, dtype=bool), np.nan, K)}, 'NaN'),
    ({'K': np.diag([0.0, 5.0, 1.0])}, 'focal'),
    ({'boxes': np.zeros((2, 4))}, r'boxes must be \(3, 4\)'),
])
def test_bad_view_set_inputs_are_refused(kwargs, message):
    arguments = {'images': IMAGES, **kwargs}
    with pytest.raises(EstimationError, match=message):
        ViewSetInput(**arguments)


def test_images_may_be_a_lazy_sequence_read_only_when_indexed():
    reads = []

    class Lazy:
        def __len__(self):
            return 3

        def __getitem__(self, index):
            reads.append(index)
            return IMAGES[index]

    inputs = ViewSetInput(Lazy())
    assert inputs.num_views == 3 and reads == []
    assert len(inputs.image_list()) == 3 and reads == [0, 1, 2]


# --- EstimationResult -----------------------------------------------------------------------


def test_results_in_any_gauge_are_expressed_in_view_0s_frame():
    rng = np.random.default_rng(1)
    world_T_camera = random_poses(rng, 4)
    expected = invert_transforms(world_T_camera[0]) @ world_T_camera
    result = EstimationResult(world_T_camera)
    np.testing.assert_allclose(result.reference_T_camera, expected, atol=1e-12)
    np.testing.assert_allclose(result.reference_T_camera[0], np.eye(4), atol=1e-12)
    assert result.num_samples == 1 and result.num_views == 4
    # the same cameras as world-to-camera poses of another world, 3 times larger: same
    # rotations, translations 3 times longer
    other_T_world = random_poses(rng, 1)[0]
    camera_T_other = invert_transforms(world_T_camera) @ invert_transforms(other_T_world)
    again = EstimationResult.from_world_to_camera(camera_T_other[:, :3, :3],
                                                  3.0 * camera_T_other[:, :3, 3])
    np.testing.assert_allclose(again.reference_T_camera[:, :3, :3], expected[:, :3, :3],
                               atol=1e-12)
    np.testing.assert_allclose(again.reference_T_camera[:, :3, 3], 3.0 * expected[:, :3, 3],
                               atol=1e-12)
    R, t = again.world_to_camera()
    np.testing.assert_allclose(make_transforms(R, t),
                               invert_transforms(again.reference_T_camera), atol=1e-12)


def test_samples_are_rebased_each_and_the_default_sources_name_the_reference():
    rng = np.random.default_rng(2)
    samples = np.stack([random_poses(rng, 3) for _ in range(5)])
    result = EstimationResult(samples[2], samples_reference_T_camera=samples)
    assert result.num_samples == 5
    np.testing.assert_allclose(result.samples_reference_T_camera[:, 0], np.tile(np.eye(4),
                                                                                (5, 1, 1)),
                               atol=1e-12)
    np.testing.assert_allclose(result.samples_reference_T_camera[2], result.reference_T_camera,
                               atol=1e-12)
    assert result.pose_sources == ('reference', 'unspecified', 'unspecified')


def test_rotation_blocks_with_float32_rounding_are_projected_onto_so3():
    poses = np.tile(np.eye(4), (2, 1, 1))
    poses[1, :3, :3] = axis_angle_rotations(np.array([0.0, 0.0, 1.0]), 0.3).astype(np.float32)
    poses[1, 0, 0] += 1e-5
    rotation = EstimationResult(poses).reference_T_camera[1, :3, :3]
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(rotation, poses[1, :3, :3], atol=2e-5)


@pytest.mark.parametrize('change, message', [
    (lambda p: p[:, :3], 'reference_T_camera must have 3 axes'),
    (lambda p: np.where(p == 1.0, np.nan, p), 'non-finite'),
    (lambda p: p * np.array([2.0, 1.0, 1.0, 1.0])[:, None], 'not a set of rigid transforms'),
])
def test_malformed_results_are_refused(change, message):
    with pytest.raises(EstimationError, match=message):
        EstimationResult(change(np.tile(np.eye(4), (2, 1, 1))))


def test_result_fields_must_fit_the_number_of_views():
    poses = np.tile(np.eye(4), (3, 1, 1))
    with pytest.raises(EstimationError, match=r'uncertainty must have shape \(3,\)'):
        EstimationResult(poses, uncertainty=np.zeros(2))
    with pytest.raises(EstimationError, match=r'K must have shape \(3, 3, 3\)'):
        EstimationResult(poses, K=np.stack([K] * 2))
    with pytest.raises(EstimationError, match='K contains non-finite'):
        EstimationResult(poses, K=np.full((3, 3, 3), np.inf))
    with pytest.raises(EstimationError, match='pose_sources must name 3'):
        EstimationResult(poses, pose_sources=('reference',))
    with pytest.raises(EstimationError, match=r'\(S, 3, 4, 4\)'):
        EstimationResult(poses, samples_reference_T_camera=np.tile(np.eye(4), (2, 2, 1, 1)))


def test_medoid_and_spread_of_samples():
    """Three samples of two cameras: camera 1 turned by 0, 10 and 30 deg about z. The medoid
    is the middle one (10 + 20 deg from the others beats 10 + 30 and 20 + 30)."""
    samples = np.tile(np.eye(4), (3, 2, 1, 1))
    for s, angle in enumerate((0.0, 10.0, 30.0)):
        samples[s, 1, :3, :3] = axis_angle_rotations(np.array([0.0, 0.0, 1.0]),
                                                     np.radians(angle))
        samples[s, 1, :3, 3] = [angle, 0.0, 0.0]
    assert medoid_index(samples) == 1
    rotation, center = sample_spread(samples, samples[1])
    np.testing.assert_allclose(rotation, [0.0, np.sqrt((100 + 0 + 400) / 3)], atol=1e-5)
    np.testing.assert_allclose(center, [0.0, np.sqrt((100 + 0 + 400) / 3)], atol=1e-12)


# --- registry -------------------------------------------------------------------------------


def test_every_builtin_estimator_is_listed_and_the_reference_ones_are_marked():
    names = set(available_estimators())
    assert {'ground_truth', 'random', 'noisy_oracle', 'classical_sift', 'ray_diffusion',
            'ray_regression'} <= names
    node_names = set(available_estimators(include_ground_truth=False))
    assert names - node_names == {'ground_truth', 'noisy_oracle'}
    assert estimator_entry('ground_truth').needs_ground_truth
    assert not estimator_entry('python:some.module:factory').needs_ground_truth


def test_reference_estimators_need_the_ground_truth():
    estimator = create_estimator('ground_truth')
    with pytest.raises(EstimationError, match='reads the ground truth'):
        estimator.estimate(ViewSetInput(IMAGES))
    truth = GroundTruth(R=random_rotations(np.random.default_rng(0), 3), t=np.zeros((3, 3)),
                        K=np.stack([K] * 3))
    assert estimator.estimate(ViewSetInput(IMAGES, ground_truth=truth)).num_views == 3


def test_plugins_build_through_the_same_registry_with_the_options():
    estimator = create_estimator('python:node_scenarios:make_oracle',
                                 EstimatorOptions(seed=3))
    assert isinstance(estimator, PoseEstimator) and estimator.name == 'oracle'
    with pytest.raises(EstimatorError, match="cannot import 'node_scenarios:nothing'"):
        create_estimator('python:node_scenarios:nothing')
    with pytest.raises(EstimatorError, match='expected "module:attribute"'):
        create_estimator('python:node_scenarios')


def test_build_failures_are_reported_with_their_cause():
    with pytest.raises(EstimatorError, match="cannot build estimator 'python:node_scenarios:"
                                             "make_failing_estimator': FileNotFoundError"):
        create_estimator('python:node_scenarios:make_failing_estimator')
    with pytest.raises(EstimatorError, match="unknown estimator 'sift'"):
        create_estimator('sift')
    with pytest.raises(EstimatorError, match='refinement must be one of'):
        EstimatorOptions(refinement='magic')
    with pytest.raises(EstimatorError, match="'random': TypeError.*no_such_option"):
        create_estimator('random', EstimatorOptions(extra={'no_such_option': 1}))


@pytest.mark.parametrize('name, words', [
    ('classical_sift', r"classical_sift: unknown option\(s\) \['no_such_option'\]; known: "),
    ('ray_diffusion', r"ray_diffusion takes no options, got \['no_such_option'\]"),
    ('ray_regression', r"ray_regression takes no options, got \['no_such_option'\]"),
])
def test_options_an_estimator_does_not_take_are_refused_by_name(name, words):
    with pytest.raises(EstimatorError, match=words):
        create_estimator(name, EstimatorOptions(extra={'no_such_option': 1}, warmup=False))


def test_refinements_wrap_estimators_by_name():
    assert set(REFINEMENTS) == {'none', 'guided', 'bundle'}
    base = create_estimator('random')
    assert with_refinement(base, 'none') is base
    refined = create_estimator('random', EstimatorOptions(refinement='bundle'))
    assert refined.name == 'random+bundle' and refined.base.name == 'random'
    with pytest.raises(RefinementError, match='has no sampler'):
        create_estimator('random', EstimatorOptions(refinement='guided'))


def test_options_are_read_as_yaml_values_and_bad_ones_are_named():
    assert parse_option('max_pairs=12') == ('max_pairs', 12)
    assert parse_option(' guidance = false') == ('guidance', False)
    assert parse_option('prior=camera_ray_token') == ('prior', 'camera_ray_token')
    assert parse_options('') == {} and parse_options(' , ') == {}
    assert parse_options('prior=camera_ray_token, prior_weight=0.1,matcher=aliked') == {
        'prior': 'camera_ray_token', 'prior_weight': 0.1, 'matcher': 'aliked'}
    for text, words in (('max_pairs', 'expected KEY=VALUE'), ('=3', 'expected KEY=VALUE'),
                        ('a=[1', 'cannot read the value'), ('a=1, a=2', 'given twice')):
        with pytest.raises(EstimatorError, match=words):
            parse_options(text)


@dataclass(frozen=True)
class _Settings:
    name: str = 'a'
    count: int = 1
    weight: float = 0.5
    switch: bool = True
    limit: Optional[float] = None


def test_typed_options_refuse_wrong_names_and_types_by_name():
    assert typed_options(_Settings, {'count': 3, 'weight': 2, 'limit': None, 'switch': False},
                         'demo') == {'count': 3, 'weight': 2.0, 'limit': None, 'switch': False}
    assert isinstance(typed_options(_Settings, {'weight': 2}, 'demo')['weight'], float)
    assert typed_options(_Settings, {'limit': 1}, 'demo') == {'limit': 1.0}
    # One --option given 'count=768,weight=2' reads as count='768,weight=2'.
    for extra, words in (({'count': '768,weight=2'}, 'demo: option count must be an integer'),
                         ({'count': True}, 'option count must be an integer'),
                         ({'count': 2.5}, 'option count must be an integer'),
                         ({'weight': 'heavy'}, 'option weight must be a number'),
                         ({'switch': 1}, 'option switch must be true or false'),
                         ({'name': 3}, 'option name must be a string'),
                         ({'limit': 'off'}, 'option limit must be a number'),
                         ({'other': 1}, r"demo: unknown option\(s\) \['other'\]")):
        with pytest.raises(EstimatorError, match=words):
            typed_options(_Settings, extra, 'demo')
