"""Fuzzing of the calibration files read back, and the confinement of the calibration writer.

``read_extrinsics_yaml`` and ``read_urdf_joints`` either return finite (4, 4) rigid transforms
or raise ``CalibrationError``, whatever the file holds (random bytes, YAML or XML that is not
a calibration, damaged real files). The writer refuses file names that would leave its folder
(absolute, ``..``, separators, a symlink pointing out) with ``CalibrationPathError``.
"""

import os
from pathlib import Path
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
import numpy as np
import pytest
import yaml

from raydiff_ros.calibration.aggregation import CalibrationError
from raydiff_ros.calibration.export import (
    CalibrationPathError,
    confined_path,
    read_extrinsics_yaml,
    read_urdf_joints,
    write_extrinsics_yaml,
    write_urdf_snippet,
)

YAML_EXAMPLES = 300
URDF_EXAMPLES = 300
NAME_EXAMPLES = 500
FRAMES = ['cam0_optical', 'cam1_optical', 'cam2_optical', 'cam3_optical']


def fuzz(examples: int) -> settings:
    """Settings of a fuzz test: a fixed number of examples, no per-example deadline."""
    return settings(max_examples=examples, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])


SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8))
YAML_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=5),
                            st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=30,
)
NUMBERS = st.one_of(st.floats(), st.integers(-10, 10), st.text(max_size=3))


@st.composite
def extrinsics_documents(draw) -> str:
    """YAML text: random values, or the calibration layout with damaged entries."""
    kind = draw(st.sampled_from(['random', 'layout', 'text']))
    if kind == 'text':
        return draw(st.text(max_size=200))
    if kind == 'random':
        return yaml.safe_dump(draw(YAML_VALUES))
    matrix = draw(st.one_of(
        st.lists(st.lists(NUMBERS, max_size=5), max_size=5),
        YAML_VALUES,
        st.just(np.eye(4).tolist()),
    ))
    entry = draw(st.one_of(st.just({'matrix4x4': matrix}), YAML_VALUES))
    cameras = draw(st.one_of(st.just({draw(st.text(max_size=5)): entry}), YAML_VALUES))
    return yaml.safe_dump({'cameras': cameras})


def _check_transforms(transforms: dict) -> None:
    for frame, matrix in transforms.items():
        assert isinstance(frame, str) and frame
        assert matrix.shape == (4, 4) and np.all(np.isfinite(matrix))
        np.testing.assert_allclose(matrix[3], (0, 0, 0, 1))
        np.testing.assert_allclose(matrix[:3, :3] @ matrix[:3, :3].T, np.eye(3), atol=1e-6)


@fuzz(YAML_EXAMPLES)
@given(text=extrinsics_documents())
def test_extrinsics_yaml_reads_back_transforms_or_raises_a_calibration_error(tmp_path, text):
    path = tmp_path / 'extrinsics.yaml'
    path.write_text(text)
    try:
        transforms = read_extrinsics_yaml(path)
    except CalibrationError as error:
        assert str(error)
        return
    _check_transforms(transforms)


@fuzz(YAML_EXAMPLES)
@given(data=st.binary(max_size=300))
def test_extrinsics_yaml_of_random_bytes_raises_a_calibration_error(tmp_path, data):
    path = tmp_path / 'extrinsics.yaml'
    path.write_bytes(data)
    try:
        transforms = read_extrinsics_yaml(path)
    except CalibrationError:
        return
    _check_transforms(transforms)


ATTRIBUTE = st.one_of(st.text(alphabet='0123456789.-e naNif', max_size=20),
                      st.text(max_size=10))


@st.composite
def urdf_documents(draw) -> bytes:
    """XML bytes: random bytes, or joints whose attributes are damaged."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=200))
    joints = []
    for _ in range(draw(st.integers(0, 3))):
        parts = ['<joint type="fixed">']
        if draw(st.booleans()):
            link = draw(st.sampled_from(['c', '', 'cam1']))
            parts.append(f'<child link="{link}"/>')
        if draw(st.booleans()):
            xyz, rpy = draw(ATTRIBUTE), draw(ATTRIBUTE)
            parts.append(f'<origin xyz="{_escape(xyz)}" rpy="{_escape(rpy)}"/>')
        parts.append('</joint>')
        joints.append(''.join(parts))
    text = '<robot>' + ''.join(joints) + '</robot>'
    if draw(st.booleans()):
        text = text[:draw(st.integers(0, len(text)))]
    return text.encode()


def _escape(text: str) -> str:
    return ''.join(c for c in text if c.isprintable()).replace('&', '').replace('<', '') \
        .replace('"', '')


@fuzz(URDF_EXAMPLES)
@given(data=urdf_documents())
def test_urdf_joints_read_back_transforms_or_raise_a_calibration_error(tmp_path, data):
    path = tmp_path / 'rig.urdf.xacro'
    path.write_bytes(data)
    try:
        transforms = read_urdf_joints(path)
    except CalibrationError as error:
        assert str(error)
        return
    _check_transforms(transforms)


def test_a_missing_calibration_file_is_a_calibration_error(tmp_path):
    with pytest.raises(CalibrationError, match='cannot read'):
        read_extrinsics_yaml(tmp_path / 'absent.yaml')
    with pytest.raises(CalibrationError, match='cannot read'):
        read_urdf_joints(tmp_path / 'absent.urdf')


NAME_PARTS = st.sampled_from(['..', '.', '', '/', 'a', 'b.yaml', '\\', '~', '\0', '..\\x'])


@fuzz(NAME_EXAMPLES)
@given(parts=st.lists(st.one_of(NAME_PARTS, st.text(max_size=6)), min_size=1, max_size=5),
       absolute=st.booleans())
def test_confined_paths_never_leave_the_folder(tmp_path, parts, absolute):
    folder = tmp_path / 'out'
    name = ('/' if absolute else '') + '/'.join(parts)
    try:
        path = confined_path(folder, name)
    except CalibrationPathError as error:
        assert str(error)
        return
    assert path.parent == folder and path.name == name
    assert os.path.realpath(path).startswith(os.path.realpath(folder) + os.sep)


@pytest.mark.parametrize('name', ['/etc/passwd', '../x.yaml', 'a/../../x', 'sub/x.yaml', '',
                                  '.', '..', 'x\0y'])
def test_names_leaving_or_not_naming_a_file_are_refused(tmp_path, name):
    with pytest.raises(CalibrationPathError):
        confined_path(tmp_path, name)


def test_a_symlink_pointing_out_of_the_folder_is_refused(tmp_path, rig_calibration):
    folder, outside = tmp_path / 'out', tmp_path / 'elsewhere.yaml'
    folder.mkdir()
    outside.write_text('keep me\n')
    (folder / 'extrinsics.yaml').symlink_to(outside)
    with pytest.raises(CalibrationPathError, match='outside'):
        confined_path(folder, 'extrinsics.yaml')
    assert outside.read_text() == 'keep me\n'


def test_writers_replace_a_symlink_instead_of_writing_through_it(tmp_path, rig_calibration):
    """Even past the check (a link made afterwards), the file is replaced, not followed."""
    outside = Path(tempfile.mkdtemp(dir=tmp_path)) / 'victim'
    outside.write_text('keep me\n')
    for name, write in (('e.yaml', write_extrinsics_yaml), ('r.urdf', write_urdf_snippet)):
        link = tmp_path / name
        link.symlink_to(outside)
        write(rig_calibration, link, FRAMES, FRAMES[0])
        assert not link.is_symlink() and link.read_text() != 'keep me\n'
    assert outside.read_text() == 'keep me\n'
