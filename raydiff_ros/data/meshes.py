"""Triangle meshes for the synthetic renderer: OBJ reading and writing, UVs, normalisation.

A :class:`MeshData` is a triangle mesh with per-corner texture coordinates (the layout of an
OBJ file: positions and UVs indexed separately). Meshes are written back as OBJ files with flat
per-face normals so that pybullet's TinyRenderer can texture and shade them.

Procedural meshes: :func:`superquadric_mesh` (a superellipsoid with its natural (u, v)
parameterisation as texture coordinates) and :func:`quad_mesh` (a textured, two-sided
rectangle, for floors and walls).
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np

PathLike = Union[str, Path]

OBJ_FLOAT_FORMAT = '{:.6f}'
"""Decimal format of coordinates written to OBJ files (deterministic text)."""

MIN_EXTENT = 1e-9
"""A mesh whose bounding box is smaller than this along every axis cannot be normalised."""

DEFAULT_UV_SCALE = 0.5
"""Box projection: texture repeats per unit length of a normalised mesh (half-extent 1)."""


class MeshError(ValueError):
    """A mesh file is unreadable or a mesh is degenerate."""


@dataclass(frozen=True)
class MeshData:
    """A triangle mesh with texture coordinates.

    Attributes:
        vertices: (V, 3) float64 positions (mesh frame).
        uvs: (T, 2) float64 texture coordinates.
        faces: (F, 3) int64 vertex indices per triangle (counter-clockwise seen from outside).
        face_uvs: (F, 3) int64 texture-coordinate indices per triangle corner.
    """

    vertices: np.ndarray
    uvs: np.ndarray
    faces: np.ndarray
    face_uvs: np.ndarray

    def __post_init__(self) -> None:
        if self.vertices.ndim != 2 or self.vertices.shape[1] != 3:
            raise MeshError(f'vertices must be (V, 3), got {self.vertices.shape}')
        if self.uvs.ndim != 2 or self.uvs.shape[1] != 2:
            raise MeshError(f'uvs must be (T, 2), got {self.uvs.shape}')
        if self.faces.ndim != 2 or self.faces.shape[1] != 3 or self.faces.shape[0] == 0:
            raise MeshError(f'faces must be (F, 3) with F > 0, got {self.faces.shape}')
        if self.face_uvs.shape != self.faces.shape:
            raise MeshError('face_uvs must have the shape of faces')
        if self.faces.min() < 0 or self.faces.max() >= len(self.vertices):
            raise MeshError('a face refers to a vertex that does not exist')
        if self.face_uvs.min() < 0 or self.face_uvs.max() >= len(self.uvs):
            raise MeshError('a face refers to a texture coordinate that does not exist')

    @property
    def half_extents(self) -> np.ndarray:
        """(3,) half sizes of the axis-aligned bounding box."""
        return (self.vertices.max(axis=0) - self.vertices.min(axis=0)) / 2

    @property
    def bbox_center(self) -> np.ndarray:
        """(3,) centre of the axis-aligned bounding box."""
        return (self.vertices.max(axis=0) + self.vertices.min(axis=0)) / 2


def _parse_index(token: str, count: int, path: Path) -> int:
    index = int(token)
    if index < 0:
        index += count
    else:
        index -= 1
    if not 0 <= index < count:
        raise MeshError(f'{path}: index {token} out of range')
    return index


def read_obj(path: PathLike) -> MeshData:
    """Read the geometry of a Wavefront OBJ file (all objects/groups merged).

    Polygons are split into triangle fans. Faces without texture coordinates get index 0 of a
    single (0, 0) coordinate (see :func:`has_texture_coordinates`).

    Args:
        path: the .obj file.

    Returns:
        The mesh in the file's own frame and units.
    """
    path = Path(path)
    vertices, uvs, faces, face_uvs = [], [], [], []
    try:
        lines = path.read_text(errors='replace').splitlines()
    except OSError as error:
        raise MeshError(f'cannot read mesh {path}: {error}') from error
    missing_uv = False
    for line in lines:
        parts = line.split()
        if not parts:
            continue
        if parts[0] == 'v':
            vertices.append([float(value) for value in parts[1:4]])
        elif parts[0] == 'vt':
            uvs.append([float(value) for value in parts[1:3]])
        elif parts[0] == 'f':
            corners = []
            for corner in parts[1:]:
                fields = corner.split('/')
                vertex = _parse_index(fields[0], len(vertices), path)
                if len(fields) > 1 and fields[1]:
                    uv = _parse_index(fields[1], len(uvs), path)
                else:
                    uv, missing_uv = -1, True
                corners.append((vertex, uv))
            for k in range(1, len(corners) - 1):
                triangle = (corners[0], corners[k], corners[k + 1])
                faces.append([c[0] for c in triangle])
                face_uvs.append([c[1] for c in triangle])
    if not vertices or not faces:
        raise MeshError(f'{path} has no triangles')
    face_uv_array = np.asarray(face_uvs, dtype=np.int64)
    uv_array = np.asarray(uvs, dtype=np.float64).reshape(-1, 2)
    if missing_uv or len(uv_array) == 0:
        uv_array = np.zeros((1, 2))
        face_uv_array = np.zeros_like(face_uv_array)
    return MeshData(
        vertices=np.asarray(vertices, dtype=np.float64),
        uvs=uv_array,
        faces=np.asarray(faces, dtype=np.int64),
        face_uvs=face_uv_array,
    )


def has_texture_coordinates(mesh: MeshData) -> bool:
    """Whether the mesh has real texture coordinates (more than one distinct UV)."""
    return len(mesh.uvs) > 1 and bool(np.ptp(mesh.uvs, axis=0).max() > 0)


def face_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Unit normals (F, 3) of triangles (F, 3) over vertices (V, 3); zero for degenerate ones."""
    corners = vertices[faces]
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    lengths = np.linalg.norm(normals, axis=1, keepdims=True)
    return np.where(lengths > 0, normals / np.where(lengths > 0, lengths, 1), 0.0)


def box_project_uvs(mesh: MeshData, uv_scale: float = DEFAULT_UV_SCALE) -> MeshData:
    """Replace a mesh's texture coordinates by a per-face box projection.

    Each triangle is projected onto the coordinate plane most facing it (the two axes other than
    its normal's dominant axis), so textures keep their aspect ratio on every side of the
    object. UV = position * ``uv_scale`` (textures repeat; the renderer wraps UVs).

    Args:
        mesh: any mesh (its own UVs are dropped).
        uv_scale: texture repeats per unit length.

    Returns:
        The mesh with (3 F, 2) UVs, one per face corner.
    """
    normals = face_normals(mesh.vertices, mesh.faces)
    dominant = np.argmax(np.abs(normals), axis=1)
    plane_axes = np.array([[1, 2], [0, 2], [0, 1]])[dominant]  # (F, 2)
    corners = mesh.vertices[mesh.faces]  # (F, 3, 3)
    uvs = np.take_along_axis(corners, plane_axes[:, None, :], axis=2) * uv_scale  # (F, 3, 2)
    num_faces = len(mesh.faces)
    return MeshData(
        vertices=mesh.vertices,
        uvs=uvs.reshape(-1, 2),
        faces=mesh.faces,
        face_uvs=np.arange(3 * num_faces, dtype=np.int64).reshape(num_faces, 3),
    )


def normalize_mesh(mesh: MeshData) -> MeshData:
    """Centre a mesh's bounding box at the origin and scale its largest half-extent to 1."""
    half = mesh.half_extents
    if half.max() < MIN_EXTENT:
        raise MeshError('the mesh has no extent')
    vertices = (mesh.vertices - mesh.bbox_center) / half.max()
    return MeshData(vertices=vertices, uvs=mesh.uvs, faces=mesh.faces, face_uvs=mesh.face_uvs)


def obj_text(mesh: MeshData) -> str:
    """OBJ text of a mesh: positions, UVs, one flat normal per face, ``f v/vt/vn`` triangles."""
    fmt = OBJ_FLOAT_FORMAT
    normals = face_normals(mesh.vertices, mesh.faces)
    lines = ['# raydiff_ros synthetic mesh']
    lines += ['v ' + ' '.join(fmt.format(c) for c in v) for v in mesh.vertices]
    lines += ['vt ' + ' '.join(fmt.format(c) for c in uv) for uv in mesh.uvs]
    lines += ['vn ' + ' '.join(fmt.format(c) for c in n) for n in normals]
    for index, (face, face_uv) in enumerate(zip(mesh.faces, mesh.face_uvs, strict=True)):
        corners = (f'{v + 1}/{t + 1}/{index + 1}' for v, t in zip(face, face_uv, strict=True))
        lines.append('f ' + ' '.join(corners))
    return '\n'.join(lines) + '\n'


def write_obj(mesh: MeshData, path: PathLike) -> Path:
    """Write ``mesh`` as an OBJ file (see :func:`obj_text`); returns the path."""
    path = Path(path)
    path.write_text(obj_text(mesh))
    return path


def _signed_power(values: np.ndarray, exponent: float) -> np.ndarray:
    return np.sign(values) * np.abs(values) ** exponent


def superquadric_mesh(
    exponents: tuple[float, float], half_extents: tuple[float, float, float], segments: int
) -> MeshData:
    """A superellipsoid surface with its (longitude, latitude) parameterisation as UVs.

    Points ``(a cos^e1(lat) cos^e2(lon), b cos^e1(lat) sin^e2(lon), c sin^e1(lat))`` with signed
    powers; exponents near 0 give boxes, 1 ellipsoids, 2 octahedra.

    Args:
        exponents: ``(e1, e2)`` latitude and longitude shape exponents, > 0.
        half_extents: ``(a, b, c)`` half sizes along x, y, z, > 0.
        segments: longitude segments (latitude uses half as many), >= 4.

    Returns:
        A closed mesh (poles are shared vertices).
    """
    if segments < 4 or min(exponents) <= 0 or min(half_extents) <= 0:
        raise MeshError('superquadric needs segments >= 4 and positive exponents and extents')
    rings = max(segments // 2, 2)
    latitudes = np.linspace(-np.pi / 2, np.pi / 2, rings + 1)
    longitudes = np.linspace(-np.pi, np.pi, segments + 1)
    lat, lon = np.meshgrid(latitudes, longitudes, indexing='ij')  # (rings + 1, segments + 1)
    e1, e2 = exponents
    a, b, c = half_extents
    x = a * _signed_power(np.cos(lat), e1) * _signed_power(np.cos(lon), e2)
    y = b * _signed_power(np.cos(lat), e1) * _signed_power(np.sin(lon), e2)
    z = c * _signed_power(np.sin(lat), e1)
    vertices = np.stack([x, y, z], axis=-1).reshape(-1, 3)
    u = (lon + np.pi) / (2 * np.pi)
    v = (lat + np.pi / 2) / np.pi
    uvs = np.stack([u, v], axis=-1).reshape(-1, 2)
    columns = segments + 1
    faces = []
    for i in range(rings):
        for j in range(segments):
            p00, p01 = i * columns + j, i * columns + j + 1
            p10, p11 = (i + 1) * columns + j, (i + 1) * columns + j + 1
            if i > 0:
                faces.append([p00, p01, p11])
            if i < rings - 1:
                faces.append([p00, p11, p10])
    face_array = np.asarray(faces, dtype=np.int64)
    return MeshData(vertices=vertices, uvs=uvs, faces=face_array, face_uvs=face_array.copy())


def quad_mesh(corners: np.ndarray, uv_repeats: tuple[float, float]) -> MeshData:
    """A two-sided textured rectangle.

    Args:
        corners: (4, 3) corners in order (origin corner, +u corner, opposite, +v corner).
        uv_repeats: texture repeats along the (first, last) edge.

    Returns:
        Four triangles (both windings), UVs from (0, 0) to ``uv_repeats``.
    """
    corners = np.asarray(corners, dtype=np.float64)
    if corners.shape != (4, 3):
        raise MeshError(f'quad corners must be (4, 3), got {corners.shape}')
    ru, rv = uv_repeats
    uvs = np.array([[0.0, 0.0], [ru, 0.0], [ru, rv], [0.0, rv]])
    faces = np.array([[0, 1, 2], [0, 2, 3], [2, 1, 0], [3, 2, 0]], dtype=np.int64)
    return MeshData(vertices=corners, uvs=uvs, faces=faces, face_uvs=faces.copy())


def merge_meshes(meshes: list[MeshData]) -> MeshData:
    """Concatenate meshes into one (indices offset accordingly)."""
    if not meshes:
        raise MeshError('nothing to merge')
    vertices, uvs, faces, face_uvs = [], [], [], []
    vertex_offset = uv_offset = 0
    for mesh in meshes:
        vertices.append(mesh.vertices)
        uvs.append(mesh.uvs)
        faces.append(mesh.faces + vertex_offset)
        face_uvs.append(mesh.face_uvs + uv_offset)
        vertex_offset += len(mesh.vertices)
        uv_offset += len(mesh.uvs)
    return MeshData(
        vertices=np.concatenate(vertices),
        uvs=np.concatenate(uvs),
        faces=np.concatenate(faces),
        face_uvs=np.concatenate(face_uvs),
    )
