"""Meshes: OBJ reading/writing, generated UVs, normalisation, procedural shapes."""

import numpy as np
import pytest

from raydiff_ros.data.meshes import (
    MeshData,
    MeshError,
    box_project_uvs,
    face_normals,
    has_texture_coordinates,
    merge_meshes,
    normalize_mesh,
    quad_mesh,
    read_obj,
    superquadric_mesh,
    write_obj,
)

SQUARE_OBJ = """\
# a unit square as one polygon, and a triangle with negative indices
v 0 0 0
v 2 0 0
v 2 1 0
v 0 1 0
vt 0 0
vt 1 0
vt 1 1
vt 0 1
f 1/1 2/2 3/3 4/4
f -4/-4 -3/-3 -1/-1
"""


def test_read_obj_triangulates_polygons_as_fans(tmp_path):
    path = tmp_path / 'square.obj'
    path.write_text(SQUARE_OBJ)
    mesh = read_obj(path)
    assert mesh.vertices.shape == (4, 3)
    np.testing.assert_array_equal(mesh.faces, [[0, 1, 2], [0, 2, 3], [0, 1, 3]])
    np.testing.assert_array_equal(mesh.face_uvs, mesh.faces)
    assert has_texture_coordinates(mesh)


def test_read_obj_without_uvs_and_bad_files(tmp_path):
    path = tmp_path / 'plain.obj'
    path.write_text('v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n')
    mesh = read_obj(path)
    assert not has_texture_coordinates(mesh)
    (tmp_path / 'empty.obj').write_text('v 0 0 0\n')
    with pytest.raises(MeshError, match='no triangles'):
        read_obj(tmp_path / 'empty.obj')
    (tmp_path / 'bad.obj').write_text('v 0 0 0\nf 1 2 3\n')
    with pytest.raises(MeshError, match='out of range'):
        read_obj(tmp_path / 'bad.obj')
    with pytest.raises(MeshError, match='cannot read'):
        read_obj(tmp_path / 'missing.obj')


def test_write_then_read_round_trip(tmp_path):
    mesh = superquadric_mesh((0.5, 1.5), (1.0, 0.5, 0.8), 8)
    again = read_obj(write_obj(mesh, tmp_path / 'sq.obj'))
    np.testing.assert_allclose(again.vertices, mesh.vertices, atol=1e-6)
    np.testing.assert_allclose(again.uvs, mesh.uvs, atol=1e-6)
    np.testing.assert_array_equal(again.faces, mesh.faces)
    np.testing.assert_array_equal(again.face_uvs, mesh.face_uvs)


def test_box_projection_uses_the_plane_facing_each_triangle():
    # one triangle in the plane x = 3 (normal +x): UVs are (y, z) * scale
    mesh = MeshData(vertices=np.array([[3.0, 0, 0], [3.0, 1, 0], [3.0, 0, 2]]),
                    uvs=np.zeros((1, 2)), faces=np.array([[0, 1, 2]]),
                    face_uvs=np.zeros((1, 3), dtype=np.int64))
    projected = box_project_uvs(mesh, uv_scale=0.5)
    np.testing.assert_allclose(projected.uvs[projected.face_uvs[0]],
                               [[0.0, 0.0], [0.5, 0.0], [0.0, 1.0]])


def test_normalize_mesh_centres_and_scales_to_unit_half_extent():
    mesh = MeshData(vertices=np.array([[1.0, 2, 3], [5.0, 3, 4], [3.0, 4, 3]]),
                    uvs=np.zeros((1, 2)), faces=np.array([[0, 1, 2]]),
                    face_uvs=np.zeros((1, 3), dtype=np.int64))
    normalized = normalize_mesh(mesh)
    np.testing.assert_allclose(normalized.bbox_center, 0.0, atol=1e-12)
    np.testing.assert_allclose(normalized.half_extents, [1.0, 0.5, 0.25])


def test_superquadric_with_unit_exponents_is_an_outward_ellipsoid():
    a, b, c = 1.0, 0.6, 0.4
    mesh = superquadric_mesh((1.0, 1.0), (a, b, c), 16)
    x, y, z = mesh.vertices.T
    np.testing.assert_allclose((x / a) ** 2 + (y / b) ** 2 + (z / c) ** 2, 1.0, atol=1e-9)
    normals = face_normals(mesh.vertices, mesh.faces)
    centroids = mesh.vertices[mesh.faces].mean(axis=1)
    nondegenerate = np.linalg.norm(normals, axis=1) > 0
    assert np.all(np.sum(normals * centroids, axis=1)[nondegenerate] > 0)
    with pytest.raises(MeshError):
        superquadric_mesh((0.0, 1.0), (1, 1, 1), 8)


def test_quad_is_two_sided_and_merge_offsets_indices():
    quad = quad_mesh(np.array([[0.0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]]), (2.0, 3.0))
    normals = face_normals(quad.vertices, quad.faces)
    np.testing.assert_allclose(normals[:, 2], [1, 1, -1, -1])
    assert quad.uvs.max(axis=0).tolist() == [2.0, 3.0]
    merged = merge_meshes([quad, quad])
    assert merged.faces.max() == 7 and len(merged.faces) == 8
