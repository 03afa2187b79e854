"""Write a rig calibration as an extrinsics YAML, a URDF/xacro snippet and a static-TF launch.

Every exported transform is ``parent_T_child``: the pose of the child frame (a camera's
optical frame) in the parent frame, mapping child coordinates into parent coordinates. Numbers
are printed with ``repr`` (shortest round-tripping form), so reading a file back gives the
printed transforms to double precision. URDF ``rpy`` is fixed-axis roll-pitch-yaw:
``R = Rz(yaw) Ry(pitch) Rx(roll)``, which is scipy's ``Rotation.from_euler('xyz', rpy)``.

Files are written to a temporary file beside the target and renamed over it, so a symbolic
link at the target is replaced, never written through. :func:`confined_path` joins a file name
to an output folder and refuses names that would leave it (absolute, ``..``, separators, a
link pointing out). The readers raise ``CalibrationError``
for anything that is not a file of the matching writer (unreadable, not YAML / XML, matrices
that are not finite rigid transforms).
"""

import math
import os
from pathlib import Path
import tempfile
from typing import Sequence, Union
import xml.etree.ElementTree as ElementTree
from xml.sax.saxutils import quoteattr

import numpy as np
from scipy.spatial.transform import Rotation
import yaml

from raydiff_ros.calibration.aggregation import CalibrationError, RigCalibration
from raydiff_ros.geometry.transforms import make_transforms

PathLike = Union[str, Path]

URDF_EULER_AXES = 'xyz'
"""scipy axes string of URDF rpy (lower case: fixed axes)."""

XACRO_NAMESPACE = 'http://www.ros.org/wiki/xacro'

YAML_WIDTH = 200
"""Line width of the YAML file, so that a matrix row stays on one line."""

WRITTEN_FILE_MODE = 0o644
"""Permissions of written files (a temporary file starts as 0600)."""

RIGID_ATOL = 1e-6
"""Largest deviation of a read-back rotation from orthonormality (and of the bottom row)."""

TRANSFORM_MEANING = (
    'pose of child_frame in parent_frame: maps points from child_frame coordinates into '
    'parent_frame coordinates (x_parent = R x_child + t)'
)


class CalibrationPathError(CalibrationError):
    """An output file name would leave its folder (absolute, ``..``, separators, symlink)."""


def confined_path(folder: PathLike, name: str) -> Path:
    """``folder / name``, refusing a ``name`` that is not one plain file name in ``folder``.

    Raises:
        CalibrationPathError: ``name`` is empty, ``.``/``..``, absolute, holds a path separator
            or NUL, or ``folder / name`` is a link (or resolves to a place) outside ``folder``.
    """
    text = str(name)
    if text in ('', '.', '..') or '\0' in text or '/' in text or '\\' in text \
            or (os.altsep and os.altsep in text) or os.path.isabs(text):
        raise CalibrationPathError(
            f'calibration file name {text!r} must be a plain file name inside {folder} '
            '(no absolute path, no "..", no separators)'
        )
    path = Path(folder) / text
    root = os.path.realpath(folder)
    if os.path.lexists(path) and os.path.dirname(os.path.realpath(path)) != root:
        raise CalibrationPathError(
            f'calibration file {path} is a link to {os.path.realpath(path)}, outside {root}'
        )
    return path


def _write_text(path: PathLike, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path`` and rename it over ``path``."""
    target = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f'.{target.name}.', dir=target.parent)
    try:
        os.fchmod(handle, WRITTEN_FILE_MODE)
        with os.fdopen(handle, 'w') as stream:
            stream.write(text)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _rigid_transform(value: object, where: str) -> np.ndarray:
    """A finite (4, 4) rigid transform from nested lists, or CalibrationError naming ``where``."""
    try:
        matrix = np.array(value, dtype=np.float64)
    except (TypeError, ValueError, OverflowError) as error:
        raise CalibrationError(f'{where} is not a 4x4 matrix of numbers: {error}') from error
    if matrix.shape != (4, 4) or not np.all(np.isfinite(matrix)):
        raise CalibrationError(f'{where} must be a finite 4x4 matrix, got shape {matrix.shape}')
    rotation = matrix[:3, :3]
    if not np.allclose(matrix[3], (0.0, 0.0, 0.0, 1.0), atol=RIGID_ATOL) or not np.allclose(
        rotation @ rotation.T, np.eye(3), atol=RIGID_ATOL
    ) or np.linalg.det(rotation) <= 0.0:
        raise CalibrationError(f'{where} is not a rigid transform (rotation and translation)')
    return matrix


def _read_bytes(path: PathLike) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise CalibrationError(f'cannot read calibration file {path}: {error}') from error


def _read_text(path: PathLike) -> str:
    try:
        return _read_bytes(path).decode()
    except UnicodeDecodeError as error:
        raise CalibrationError(f'cannot read calibration file {path}: {error}') from error


def _number(value: float) -> str:
    return repr(float(value))


def _parent_T_children(
    calibration: RigCalibration, frames: Sequence[str], parent_frame: str
) -> list[tuple[int, str, np.ndarray]]:
    """``(camera, child_frame, parent_T_child (4, 4))`` of every camera not the parent.

    The parent frame is the rig frame (camera 0's optical frame), whatever it is named.
    """
    if len(frames) != calibration.num_cameras:
        raise CalibrationError(
            f'{len(frames)} frame names for {calibration.num_cameras} cameras'
        )
    if len(set(frames)) != len(frames) or not all(frames) or not parent_frame:
        raise CalibrationError(f'frame names must be distinct and non-empty: {list(frames)}')
    if parent_frame in frames[1:]:
        raise CalibrationError(
            f'parent_frame {parent_frame!r} must be the rig frame (camera 0) or a new name'
        )
    return [
        (camera, frame, calibration.rig_T_camera[camera])
        for camera, frame in enumerate(frames)
        if frame != parent_frame
    ]


def urdf_rpy(rotation: np.ndarray) -> np.ndarray:
    """URDF (roll, pitch, yaw) (3,) in radians of a (3, 3) ``parent_R_child``."""
    return Rotation.from_matrix(rotation).as_euler(URDF_EULER_AXES)


def write_extrinsics_yaml(
    calibration: RigCalibration,
    path: PathLike,
    frames: Sequence[str],
    parent_frame: str,
    scale_source: str = '',
) -> None:
    """Write ``path``: one entry per camera with ``parent_frame``, ``child_frame``, the key
    ``<parent>_T_<child>`` (its meaning), ``xyz_m``, ``quat_xyzw``, ``rpy_rad``,
    ``matrix4x4``, ``covariance6x6`` (ROS order x y z rx ry rz, in the parent frame) and units.

    Args:
        calibration: the solved rig.
        path: output file.
        frames: C optical frame names of the cameras; ``frames[0]`` is the rig frame unless
            ``parent_frame`` names another (then camera 0 is exported as the identity).
        parent_frame: the frame the transforms are expressed in.
        scale_source: how the unit was fixed (default: the calibration's).
    """
    cameras = {}
    for camera, child, parent_T_child in _parent_T_children(calibration, frames, parent_frame):
        rotation = parent_T_child[:3, :3]
        cameras[child] = {
            'camera_index': camera,
            'parent_frame': parent_frame,
            'child_frame': child,
            f'{parent_frame}_T_{child}': TRANSFORM_MEANING,
            'xyz_m': [float(v) for v in parent_T_child[:3, 3]],
            'quat_xyzw': [float(v) for v in Rotation.from_matrix(rotation).as_quat()],
            'rpy_rad': [float(v) for v in urdf_rpy(rotation)],
            'matrix4x4': [[float(v) for v in row] for row in parent_T_child],
            'covariance6x6': [[float(v) for v in row] for row in calibration.covariances[camera]],
            'rotation_std_deg': float(calibration.rotation_std_deg[camera]),
            'translation_std_m': float(calibration.translation_std[camera]),
            'view_sets_used': int(calibration.view_sets_used[camera]),
        }
    document = {
        'scale_source': scale_source or calibration.scale_source,
        'metric': calibration.metric,
        'units': {
            'xyz_m': 'metres (arbitrary unit when metric is false)',
            'quat_xyzw': 'unit quaternion, Hamilton, x y z w',
            'rpy_rad': 'radians, URDF fixed-axis roll pitch yaw: R = Rz(yaw) Ry(pitch) Rx(roll)',
            'covariance6x6': 'ROS order x y z rx ry rz, in parent_frame; m^2, rad^2',
        },
        'convergence': {
            'converged': bool(calibration.convergence.converged),
            'rotation_change_deg': float(calibration.convergence.rotation_change_deg),
            'translation_change_fraction': float(
                calibration.convergence.translation_change_fraction
            ),
            'window_view_sets': int(calibration.convergence.window),
        },
        'cameras': cameras,
    }
    _write_text(
        path,
        yaml.safe_dump(document, sort_keys=False, default_flow_style=None, width=YAML_WIDTH),
    )


def read_extrinsics_yaml(path: PathLike) -> dict[str, np.ndarray]:
    """``{child_frame: parent_T_child (4, 4)}`` from a file of ``write_extrinsics_yaml``.

    Raises:
        CalibrationError: the file is unreadable, not YAML, has no ``cameras`` mapping, or an
            entry lacks a finite rigid ``matrix4x4``.
    """
    text = _read_text(path)
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise CalibrationError(f'{path} is not valid YAML: {error}') from error
    if not isinstance(document, dict) or not isinstance(document.get('cameras'), dict):
        raise CalibrationError(f'{path} is not an extrinsics file (no cameras mapping)')
    transforms = {}
    for child, entry in document['cameras'].items():
        if not isinstance(child, str) or not child:
            raise CalibrationError(f'{path}: camera key {child!r} is not a frame name')
        if not isinstance(entry, dict) or 'matrix4x4' not in entry:
            raise CalibrationError(f'{path}: camera {child!r} has no matrix4x4')
        transforms[child] = _rigid_transform(entry['matrix4x4'], f'{path}: {child} matrix4x4')
    return transforms


def write_urdf_snippet(
    calibration: RigCalibration,
    path: PathLike,
    frames: Sequence[str],
    parent_frame: str,
) -> None:
    """Write ``path``: a xacro-compatible ``<robot>`` holding one ``<joint type="fixed">`` per
    camera (``<parent link>``, ``<child link>``, ``<origin xyz rpy>`` of ``parent_T_child``).

    The links themselves are not declared: they belong to the robot description that
    includes the snippet (``<xacro:include filename="..."/>``).
    """
    lines = [
        '<?xml version="1.0"?>',
        f'<robot name="raydiff_rig_calibration" xmlns:xacro="{XACRO_NAMESPACE}">',
        f'  <!-- parent_T_child of every camera; scale source: {calibration.scale_source};',
        '       rpy: URDF fixed-axis roll pitch yaw, radians; xyz: metres -->',
    ]
    for _, child, parent_T_child in _parent_T_children(calibration, frames, parent_frame):
        xyz = ' '.join(_number(v) for v in parent_T_child[:3, 3])
        rpy = ' '.join(_number(v) for v in urdf_rpy(parent_T_child[:3, :3]))
        lines += [
            f'  <joint name={quoteattr(f"{parent_frame}_to_{child}_joint")} type="fixed">',
            f'    <parent link={quoteattr(parent_frame)}/>',
            f'    <child link={quoteattr(child)}/>',
            f'    <origin xyz="{xyz}" rpy="{rpy}"/>',
            '  </joint>',
        ]
    lines.append('</robot>')
    _write_text(path, '\n'.join(lines) + '\n')


def _origin_triple(origin: ElementTree.Element | None, name: str, where: str) -> np.ndarray:
    """The three finite numbers of ``<origin name="...">`` (zeros when absent)."""
    text = '0 0 0' if origin is None else origin.get(name, '0 0 0')
    try:
        values = [float(part) for part in text.split()]
    except ValueError as error:
        raise CalibrationError(f'{where}: origin {name}={text!r} is not numbers') from error
    if len(values) != 3 or not all(math.isfinite(v) for v in values):
        raise CalibrationError(f'{where}: origin {name}={text!r} must be 3 finite numbers')
    return np.array(values)


def read_urdf_joints(path: PathLike) -> dict[str, np.ndarray]:
    """``{child_link: parent_T_child (4, 4)}`` of the fixed joints in a URDF/xacro file.

    Raises:
        CalibrationError: the file is unreadable or not XML, or a fixed joint has no child
            link or an origin that is not three finite numbers each for xyz and rpy.
    """
    data = _read_bytes(path)
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as error:
        raise CalibrationError(f'{path} is not valid XML: {error}') from error
    joints = {}
    for joint in root.iter('joint'):
        if joint.get('type') != 'fixed':
            continue
        where = f'{path}: joint {joint.get("name")!r}'
        child = joint.find('child')
        origin = joint.find('origin')
        if child is None or not child.get('link'):
            raise CalibrationError(f'{where} has no child link')
        xyz = _origin_triple(origin, 'xyz', where)
        rpy = _origin_triple(origin, 'rpy', where)
        rotation = Rotation.from_euler(URDF_EULER_AXES, rpy).as_matrix()
        joints[child.get('link')] = _rigid_transform(make_transforms(rotation, xyz), where)
    return joints


def write_static_tf_launch(
    calibration: RigCalibration,
    path: PathLike,
    frames: Sequence[str],
    parent_frame: str,
) -> None:
    """Write ``path``: a ROS 2 launch.py with one ``tf2_ros static_transform_publisher`` Node
    per camera, ``--x --y --z --qx --qy --qz --qw --frame-id <parent> --child-frame-id
    <child>`` of ``parent_T_child`` (URDF rpy in a comment)."""
    nodes = []
    for _, child, parent_T_child in _parent_T_children(calibration, frames, parent_frame):
        qx, qy, qz, qw = Rotation.from_matrix(parent_T_child[:3, :3]).as_quat()
        x, y, z = parent_T_child[:3, 3]
        rpy = ' '.join(_number(v) for v in urdf_rpy(parent_T_child[:3, :3]))
        arguments = [
            ('--x', _number(x)), ('--y', _number(y)), ('--z', _number(z)),
            ('--qx', _number(qx)), ('--qy', _number(qy)), ('--qz', _number(qz)),
            ('--qw', _number(qw)), ('--frame-id', parent_frame), ('--child-frame-id', child),
        ]
        argument_lines = ''.join(
            f'                {flag!r}, {value!r},\n' for flag, value in arguments
        )
        nodes.append(
            f'        # {parent_frame}_T_{child}; URDF rpy (rad): {rpy}\n'
            '        Node(\n'
            "            package='tf2_ros',\n"
            "            executable='static_transform_publisher',\n"
            f"            name={_node_name(child)!r},\n"
            '            arguments=[\n'
            + argument_lines
            + '            ],\n'
            '        ),\n'
        )
    _write_text(
        path,
        '"""Static transforms of the camera optical frames from a raydiff_ros rig calibration\n'
        f'(parent_T_child, scale source: {calibration.scale_source})."""\n\n'
        'from launch import LaunchDescription\n'
        'from launch_ros.actions import Node\n\n\n'
        'def generate_launch_description():\n'
        '    return LaunchDescription([\n'
        + ''.join(nodes)
        + '    ])\n'
    )


def _node_name(frame: str) -> str:
    cleaned = ''.join(c if c.isalnum() else '_' for c in frame)
    return f'static_tf_{cleaned}'

