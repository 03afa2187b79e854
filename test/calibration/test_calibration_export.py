"""Exports of a rig calibration: YAML, URDF/xacro snippet and static-TF launch file."""

import ast

import numpy as np
import pytest
from scipy.spatial.transform import Rotation
import yaml

from raydiff_ros.calibration.aggregation import CalibrationError
from raydiff_ros.calibration.export import (
    read_extrinsics_yaml,
    read_urdf_joints,
    urdf_rpy,
    write_extrinsics_yaml,
    write_static_tf_launch,
    write_urdf_snippet,
)
from raydiff_ros.geometry.transforms import make_transforms

FRAMES = ['cam0_optical', 'cam1_optical', 'cam2_optical', 'cam3_optical']
ROUND_TRIP_ATOL = 1e-9


def test_urdf_snippet_loads_back_to_the_same_transforms(rig_calibration, tmp_path):
    path = tmp_path / 'rig.urdf.xacro'
    write_urdf_snippet(rig_calibration, path, FRAMES, FRAMES[0])
    joints = read_urdf_joints(path)
    assert sorted(joints) == FRAMES[1:]
    for camera, frame in enumerate(FRAMES[1:], start=1):
        np.testing.assert_allclose(
            joints[frame], rig_calibration.rig_T_camera[camera], atol=ROUND_TRIP_ATOL
        )
    text = path.read_text()
    assert 'xmlns:xacro=' in text and 'type="fixed"' in text
    assert '<parent link="cam0_optical"' in text and '<child link="cam3_optical"' in text


def test_urdf_snippet_with_a_named_rig_frame_has_an_identity_joint(rig_calibration, tmp_path):
    path = tmp_path / 'rig.urdf'
    write_urdf_snippet(rig_calibration, path, FRAMES, 'rig')
    joints = read_urdf_joints(path)
    assert sorted(joints) == FRAMES
    np.testing.assert_allclose(joints[FRAMES[0]], np.eye(4), atol=ROUND_TRIP_ATOL)


def test_extrinsics_yaml_round_trip_and_fields(rig_calibration, tmp_path):
    path = tmp_path / 'extrinsics.yaml'
    write_extrinsics_yaml(rig_calibration, path, FRAMES, FRAMES[0], 'known_baseline')
    transforms = read_extrinsics_yaml(path)
    for camera, frame in enumerate(FRAMES[1:], start=1):
        np.testing.assert_array_equal(transforms[frame], rig_calibration.rig_T_camera[camera])
    document = yaml.safe_load(path.read_text())
    assert document['scale_source'] == 'known_baseline'
    entry = document['cameras']['cam2_optical']
    assert entry['parent_frame'] == 'cam0_optical' and entry['child_frame'] == 'cam2_optical'
    assert 'pose of child_frame in parent_frame' in entry['cam0_optical_T_cam2_optical']
    matrix = np.array(entry['matrix4x4'])
    np.testing.assert_allclose(entry['xyz_m'], matrix[:3, 3])
    np.testing.assert_allclose(
        Rotation.from_quat(entry['quat_xyzw']).as_matrix(), matrix[:3, :3], atol=1e-12
    )
    np.testing.assert_allclose(
        Rotation.from_euler('xyz', entry['rpy_rad']).as_matrix(), matrix[:3, :3], atol=1e-12
    )
    np.testing.assert_array_equal(entry['covariance6x6'], rig_calibration.covariances[2])
    assert 'm' in document['units']['xyz_m']


def test_urdf_rpy_is_fixed_axis_roll_pitch_yaw():
    roll, pitch, yaw = 0.3, -0.7, 2.1
    Rx = np.array([[1, 0, 0], [0, np.cos(roll), -np.sin(roll)], [0, np.sin(roll), np.cos(roll)]])
    Ry = np.array(
        [[np.cos(pitch), 0, np.sin(pitch)], [0, 1, 0], [-np.sin(pitch), 0, np.cos(pitch)]]
    )
    Rz = np.array([[np.cos(yaw), -np.sin(yaw), 0], [np.sin(yaw), np.cos(yaw), 0], [0, 0, 1]])
    rotation = Rz @ Ry @ Rx
    np.testing.assert_allclose(urdf_rpy(rotation), [roll, pitch, yaw], atol=1e-12)
    np.testing.assert_allclose(
        Rotation.from_euler('xyz', [roll, pitch, yaw]).as_matrix(), rotation, atol=1e-12
    )


def _launch_arguments(path) -> list[list[str]]:
    """The ``arguments`` lists of the Node(...) calls of a launch file, read by ``ast``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, 'id', None) == 'Node':
            keywords = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
            assert keywords['package'] == 'tf2_ros'
            assert keywords['executable'] == 'static_transform_publisher'
            found.append(keywords['arguments'])
    return found


def test_static_tf_launch_publishes_each_camera(rig_calibration, tmp_path):
    path = tmp_path / 'rig_static_tf.launch.py'
    write_static_tf_launch(rig_calibration, path, FRAMES, FRAMES[0])
    arguments = _launch_arguments(path)
    assert len(arguments) == 3
    for args in arguments:
        values = dict(zip(args[0::2], args[1::2], strict=True))
        assert values['--frame-id'] == FRAMES[0]
        camera = FRAMES.index(values['--child-frame-id'])
        xyz = [float(values[k]) for k in ('--x', '--y', '--z')]
        quat = [float(values[k]) for k in ('--qx', '--qy', '--qz', '--qw')]
        transform = make_transforms(Rotation.from_quat(quat).as_matrix(), np.array(xyz))
        np.testing.assert_allclose(
            transform, rig_calibration.rig_T_camera[camera], atol=ROUND_TRIP_ATOL
        )


def test_export_rejects_bad_frame_names(rig_calibration, tmp_path):
    with pytest.raises(CalibrationError, match='3 frame names for 4 cameras'):
        write_urdf_snippet(rig_calibration, tmp_path / 'a.urdf', FRAMES[:3], FRAMES[0])
    with pytest.raises(CalibrationError, match='distinct'):
        write_extrinsics_yaml(rig_calibration, tmp_path / 'a.yaml', ['a', 'a', 'b', 'c'], 'a')
    with pytest.raises(CalibrationError, match='rig frame'):
        write_static_tf_launch(rig_calibration, tmp_path / 'a.py', FRAMES, FRAMES[2])
