"""Catalogue of the meshes and texture images shipped in ``pybullet_data`` (pybullet 3.2.7).

Four mesh sources feed the generator:

* ``blob``: the 1000 procedural convex-decomposition meshes ``random_urdfs/NNN/NNN.obj``. They
  have no texture coordinates; :class:`MeshLibrary` gives them box-projected UVs;
* ``textured``: objects with their own UVs and texture image (duck, soccer ball, toys, ...);
* ``plain``: other untextured meshes (bunny, teddy, mug, ...), box-projected like blobs;
* ``superquadric``: procedural superellipsoids (:func:`raydiff_ros.data.meshes.superquadric_mesh`),
  generated from sampled parameters rather than read from disk.

Licences: pybullet and pybullet_data are under the zlib licence; a few assets carry their own
terms (see ``raydiff_ros/data/README.md``). Renders are generated locally and never committed.

Every mesh is normalised (bounding box centred at the origin, largest half-extent 1) and
written to an OBJ file with flat normals in a working folder, where pybullet loads it.
"""

from dataclasses import dataclass
from pathlib import Path
import re
from typing import Optional

import numpy as np

from raydiff_ros.data.meshes import (
    MeshData,
    MeshError,
    box_project_uvs,
    has_texture_coordinates,
    merge_meshes,
    normalize_mesh,
    quad_mesh,
    read_obj,
    superquadric_mesh,
    write_obj,
)

BLOB_FOLDER = 'random_urdfs'
BLOB_COUNT = 1000

TEXTURED_OBJECTS: tuple[tuple[str, str], ...] = (
    ('duck.obj', 'duckCM.png'),
    ('soccerball.obj', 'colors16.png'),
    ('domino/domino.obj', 'domino/domino.jpg'),
    ('jenga/jenga.obj', 'jenga/jenga.png'),
    ('torus/torus_textured.obj', 'cube.png'),
    ('toys/concave_box.obj', 'checker_grid.jpg'),
    ('toys/cube.obj', 'table/table.png'),
    ('toys/cylinder.obj', 'table/table.png'),
    ('toys/prism.obj', 'table/table.png'),
    ('toys/shape_sorter.obj', 'table/table.png'),
    ('tray/tray_textured.obj', 'tray/tray.jpg'),
    ('tray/tray_textured2.obj', 'tray/tray.jpg'),
    ('textured_sphere_smooth.obj', 'uvmap.png'),
    ('quadruped/tmotor3.obj', 'quadruped/t-motor.jpg'),
    ('laikago/hip_motor_lores.obj', 'laikago/laikago_tex.jpg'),
    ('laikago/lower_leg3_lores.obj', 'laikago/laikago_tex.jpg'),
    ('laikago/upper_leg_left_lores.obj', 'laikago/laikago_tex.jpg'),
    ('laikago/chassis_zup_lores.obj', 'laikago/laikago_tex.jpg'),
    ('aliengo/meshes/calf.obj', 'aliengo/meshes/aliengo.png'),
    ('aliengo/meshes/thigh.obj', 'aliengo/meshes/aliengo.png'),
    ('racecar/meshes/left_front_wheel.obj', 'racecar/meshes/wheel.jpg'),
)
"""(mesh, texture) pairs with texture coordinates, relative to the pybullet_data folder."""

PLAIN_MESHES: tuple[str, ...] = (
    'bunny.obj',
    'teddy2_VHACD_CHs.obj',
    'objects/mug.obj',
    'lego/lego.obj',
    'duck_vhacd.obj',
    'racecar/meshes/cone.obj',
    'racecar/meshes/hokuyo.obj',
    'kuka_iiwa/meshes/link_1.obj',
    'kuka_iiwa/meshes/link_2.obj',
    'kuka_iiwa/meshes/link_3.obj',
    'kuka_iiwa/meshes/link_4.obj',
    'kuka_iiwa/meshes/link_5.obj',
    'kuka_iiwa/meshes/link_6.obj',
    'kuka_iiwa/meshes/link_7.obj',
    'laikago/chassis_vhacd.obj',
    'franka_panda/meshes/collision/hand.obj',
    'franka_panda/meshes/collision/link1.obj',
    'franka_panda/meshes/collision/link3.obj',
)
"""Untextured meshes, relative to the pybullet_data folder."""

TEXTURE_IMAGES: tuple[str, ...] = (
    'checker_blue.png',
    'checker_grid.jpg',
    'cube.png',
    'duckCM.png',
    'tex256.png',
    'uvmap.png',
    'colors16.png',
    'jenga/jenga.png',
    'domino/domino.jpg',
    'table/table.png',
    'tray/tray.jpg',
    'laikago/laikago_tex.jpg',
    'quadruped/t-motor.jpg',
    'racecar/meshes/wheel.jpg',
    'roboschool/models_outdoor/stadium/stadium_grass.jpg',
    'aliengo/meshes/aliengo.png',
    'a1/meshes/trunk_A1.png',
)
"""Texture images usable on any surface, relative to the pybullet_data folder."""

MATPLOTLIB_PREFIX = 'matplotlib/'
MATPLOTLIB_PHOTOS: tuple[str, ...] = (MATPLOTLIB_PREFIX + 'grace_hopper.jpg',)
"""Photographs of matplotlib's ``mpl-data/sample_data`` that are clearly public domain (the
licence reasoning is in ``raydiff_ros/data/README.md``)."""

PHOTO_SOURCES: tuple[str, ...] = TEXTURE_IMAGES + MATPLOTLIB_PHOTOS
"""Images that photo textures (random crops, rotations, colour jitter) are cut from: paths
relative to pybullet_data, or ``matplotlib/NAME`` for matplotlib's sample data."""

MESH_SOURCES = ('blob', 'textured', 'plain', 'superquadric', 'box')
BOX_MESH = 'unit_box'
"""The name of the ``box`` source's only mesh: the cube [-1, 1]^3, one texture per face."""
SUPERQUADRIC_SEGMENTS = 24
_SAFE_NAME = re.compile(r'[^A-Za-z0-9_.-]+')


class AssetError(RuntimeError):
    """pybullet_data is missing, or an asset cannot be read."""


def pybullet_data_root() -> Path:
    """Folder of the ``pybullet_data`` package (ships with the ``pybullet`` wheel)."""
    try:
        import pybullet_data
    except ImportError as error:
        raise AssetError(
            'pybullet is not installed: the synthetic generator needs `pip install '
            'pybullet==3.2.7`'
        ) from error
    return Path(pybullet_data.getDataPath())


@dataclass(frozen=True)
class MeshRef:
    """Which mesh an object uses.

    Attributes:
        source: one of ``MESH_SOURCES``.
        name: a path relative to pybullet_data (blob, textured, plain), or a unique name
            (superquadric).
        superquadric: ``(e1, e2, a, b, c)`` shape exponents and half-extents (superquadric
            only).
    """

    source: str
    name: str
    superquadric: Optional[tuple[float, float, float, float, float]] = None

    def __post_init__(self) -> None:
        if self.source not in MESH_SOURCES:
            raise AssetError(f'unknown mesh source {self.source!r}; known: {MESH_SOURCES}')
        if (self.source == 'superquadric') != (self.superquadric is not None):
            raise AssetError('superquadric parameters go with (only) the superquadric source')

    @property
    def own_texture(self) -> Optional[str]:
        """The texture image that belongs to a textured object, else None."""
        if self.source != 'textured':
            return None
        return dict(TEXTURED_OBJECTS)[self.name]

    def to_dict(self) -> dict:
        data = {'source': self.source, 'name': self.name}
        if self.superquadric is not None:
            data['superquadric'] = [float(v) for v in self.superquadric]
        return data


def box_mesh() -> MeshData:
    """The cube [-1, 1]^3 as six two-sided quads, each face textured once (UVs 0..1)."""
    c = np.array([[x, y, z] for z in (-1, 1) for y in (-1, 1) for x in (-1, 1)], dtype=float)
    faces = ((0, 1, 3, 2), (4, 5, 7, 6), (0, 1, 5, 4), (2, 3, 7, 6), (0, 2, 6, 4), (1, 3, 7, 5))
    return merge_meshes([quad_mesh(c[list(face)], (1.0, 1.0)) for face in faces])


def blob_names() -> tuple[str, ...]:
    """Relative paths of the 1000 procedural blob meshes."""
    return tuple(f'{BLOB_FOLDER}/{i:03d}/{i:03d}.obj' for i in range(BLOB_COUNT))


class MeshLibrary:
    """Loads, normalises and caches meshes, and writes them as OBJ files for pybullet.

    Args:
        work_dir: folder where normalised OBJ files are written (one per mesh).
        data_root: the pybullet_data folder (default: the installed one).
    """

    def __init__(self, work_dir: Path, data_root: Optional[Path] = None) -> None:
        self.data_root = Path(data_root) if data_root is not None else pybullet_data_root()
        self.work_dir = Path(work_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._meshes: dict[MeshRef, MeshData] = {}
        self._files: dict[MeshRef, Path] = {}

    def resolve(self, relative: str) -> Path:
        """Absolute path of a pybullet_data file; raises AssetError if it is missing."""
        path = self.data_root / relative
        if not path.is_file():
            raise AssetError(f'pybullet_data file {path} is missing')
        return path

    def photo_path(self, name: str) -> Path:
        """Absolute path of a photo source (an entry of ``PHOTO_SOURCES``)."""
        if not name.startswith(MATPLOTLIB_PREFIX):
            return self.resolve(name)
        try:
            import matplotlib
        except ImportError as error:
            raise AssetError('matplotlib is needed for its sample photographs') from error
        path = Path(matplotlib.get_data_path()) / 'sample_data' / name[len(MATPLOTLIB_PREFIX):]
        if not path.is_file():
            raise AssetError(f'matplotlib sample image {path} is missing')
        return path

    def mesh(self, ref: MeshRef) -> MeshData:
        """The normalised mesh (bounding box centred, largest half-extent 1) of ``ref``."""
        if ref not in self._meshes:
            self._meshes[ref] = self._load(ref)
        return self._meshes[ref]

    def obj_file(self, ref: MeshRef) -> Path:
        """Path of the normalised OBJ file of ``ref`` (written on first use)."""
        if ref not in self._files:
            name = _SAFE_NAME.sub('_', f'{ref.source}_{ref.name}')
            if not name.endswith('.obj'):
                name += '.obj'
            self._files[ref] = write_obj(self.mesh(ref), self.work_dir / name)
        return self._files[ref]

    def _load(self, ref: MeshRef) -> MeshData:
        if ref.source == 'box':
            return box_mesh()
        if ref.source == 'superquadric':
            e1, e2, a, b, c = ref.superquadric
            return normalize_mesh(superquadric_mesh((e1, e2), (a, b, c), SUPERQUADRIC_SEGMENTS))
        try:
            mesh = normalize_mesh(read_obj(self.resolve(ref.name)))
        except MeshError as error:
            raise AssetError(str(error)) from error
        if ref.source == 'textured' and has_texture_coordinates(mesh):
            return mesh
        return box_project_uvs(mesh)
