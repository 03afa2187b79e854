"""Offline rendering of generated scenes with pybullet's TinyRenderer (CPU, no GPU, no display).

:class:`PyBulletRenderer` owns one pybullet ``DIRECT`` client. ``build(scene)`` replaces the
world with a scene (objects, floor, walls, table), ``render(camera, W, H)`` returns the RGB
image and a per-pixel label image: 0 for floor, walls, table and background, and each object's
``label`` (1, 2, ...) where that object is the nearest surface.

Pixels no surface covers get the scene's background colour. TinyRenderer is deterministic:
the same scene and camera give the same bytes. Meshes and procedural textures are written to
the renderer's working folder (OBJ and PNG files) because pybullet loads them from files.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image

from raydiff_ros.data.assets import MeshLibrary, pybullet_data_root
from raydiff_ros.data.camera_models import opengl_projection_matrix, opengl_view_matrix
from raydiff_ros.data.meshes import merge_meshes, quad_mesh, write_obj
from raydiff_ros.data.scene_sampling import (
    CameraSpec,
    ObjectSpec,
    RoomSpec,
    SceneSpec,
    TextureSpec,
)
from raydiff_ros.data.textures import photo_texture, procedural_texture

BACKGROUND_LABEL = 0
NO_SURFACE = -1
"""pybullet segmentation value of pixels that no body covers."""
DEFAULT_NEAR = 0.01
DEFAULT_FAR = 100.0
MAX_LABEL = 255
WALL_COUNT = 4


@dataclass(frozen=True)
class RenderedView:
    """One rendered image.

    Attributes:
        rgb: (H, W, 3) uint8.
        labels: (H, W) uint8 object labels (0 = no object).
    """

    rgb: np.ndarray
    labels: np.ndarray


def quaternion_from_rotation(R: np.ndarray) -> list:
    """pybullet quaternion ``[x, y, z, w]`` of a rotation matrix (3, 3)."""
    R = np.asarray(R, dtype=np.float64)
    trace = np.trace(R)
    if trace > 0:
        s = 2.0 * np.sqrt(1.0 + trace)
        q = [(R[2, 1] - R[1, 2]) / s, (R[0, 2] - R[2, 0]) / s, (R[1, 0] - R[0, 1]) / s, s / 4]
    else:
        i = int(np.argmax(np.diag(R)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * np.sqrt(1.0 + R[i, i] - R[j, j] - R[k, k])
        q = [0.0, 0.0, 0.0, (R[k, j] - R[j, k]) / s]
        q[i] = s / 4
        q[j] = (R[j, i] + R[i, j]) / s
        q[k] = (R[k, i] + R[i, k]) / s
    q = np.asarray(q)
    return (q / np.linalg.norm(q)).tolist()


def _import_pybullet():
    pybullet_data_root()  # raises AssetError naming the missing package
    import pybullet
    return pybullet


class PyBulletRenderer:
    """Builds scenes in a pybullet DIRECT client and renders them with TinyRenderer.

    Args:
        library: mesh library (its folder also receives room meshes and textures).
        texture_size: side of procedural textures in pixels.
        near, far: clipping distances.
    """

    def __init__(self, library: MeshLibrary, texture_size: int, near: float = DEFAULT_NEAR,
                 far: float = DEFAULT_FAR) -> None:
        self._p = _import_pybullet()
        self.library = library
        self.work_dir = library.work_dir
        self.texture_size = texture_size
        self.near, self.far = near, far
        self._client = self._p.connect(self._p.DIRECT)
        self._textures: dict[Path, int] = {}
        self._photos: dict[str, np.ndarray] = {}
        self._body_labels: dict[int, int] = {}
        self._scene: Optional[SceneSpec] = None
        self._room_counter = 0

    def close(self) -> None:
        """Disconnect the pybullet client (frees all meshes and textures)."""
        if self._client is not None:
            self._p.disconnect(physicsClientId=self._client)
            self._client = None

    def __enter__(self) -> 'PyBulletRenderer':
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- scene ------------------------------------------------------------------------------

    def _texture_path(self, texture: TextureSpec) -> Path:
        if texture.kind == 'image':
            return self.library.resolve(texture.name)
        if texture.kind == 'photo':
            stem = ''.join(c if c.isalnum() else '_' for c in texture.name)
            path = self.work_dir / f'tex_photo_{stem}_{texture.seed}_{self.texture_size}.png'
            if not path.is_file():
                Image.fromarray(photo_texture(self._photo(texture.name), texture.seed,
                                              self.texture_size)).save(path)
            return path
        path = self.work_dir / f'tex_{texture.kind}_{texture.seed}_{self.texture_size}.png'
        if not path.is_file():
            Image.fromarray(procedural_texture(texture.kind, texture.seed, self.texture_size)
                            ).save(path)
        return path

    def _photo(self, name: str) -> np.ndarray:
        if name not in self._photos:
            with Image.open(self.library.photo_path(name)) as image:
                self._photos[name] = np.asarray(image.convert('RGB'))
        return self._photos[name]

    def _texture_id(self, texture: TextureSpec) -> int:
        path = self._texture_path(texture)
        if path not in self._textures:
            self._textures[path] = self._p.loadTexture(str(path), physicsClientId=self._client)
        return self._textures[path]

    def _add_mesh_body(self, obj_file: Path, scale, position, rotation, texture: TextureSpec,
                       rgba, label: int) -> int:
        p = self._p
        shape = p.createVisualShape(p.GEOM_MESH, fileName=str(obj_file),
                                    meshScale=[float(s) for s in scale],
                                    physicsClientId=self._client)
        body = p.createMultiBody(baseMass=0, baseVisualShapeIndex=shape,
                                 basePosition=[float(v) for v in position],
                                 baseOrientation=quaternion_from_rotation(rotation),
                                 physicsClientId=self._client)
        p.changeVisualShape(body, -1, textureUniqueId=self._texture_id(texture),
                            rgbaColor=list(rgba), physicsClientId=self._client)
        self._body_labels[body] = label
        return body

    def _add_object(self, spec: ObjectSpec) -> None:
        if not 0 <= spec.label <= MAX_LABEL:
            raise ValueError(f'object label {spec.label} outside [0, {MAX_LABEL}]')
        self._add_mesh_body(self.library.obj_file(spec.mesh), spec.scale, spec.position,
                            spec.rotation, spec.texture, spec.rgba, spec.label)

    def _room_file(self, mesh) -> Path:
        self._room_counter += 1
        return write_obj(mesh, self.work_dir / f'room_{self._room_counter:06d}.obj')

    def _add_room(self, room: RoomSpec) -> None:
        half = room.floor_half_size
        floor = quad_mesh(np.array([[-half, -half, 0], [half, -half, 0], [half, half, 0],
                                    [-half, half, 0]]),
                          (room.floor_repeats, room.floor_repeats))
        self._add_mesh_body(self._room_file(floor), (1, 1, 1), (0, 0, 0), np.eye(3),
                            room.floor_texture, room.floor_rgba, BACKGROUND_LABEL)
        if room.wall_distance is not None:
            d, h = room.wall_distance, room.wall_height
            corners = np.array([[-d, -d], [d, -d], [d, d], [-d, d]])
            walls = []
            for k in range(WALL_COUNT):
                a, b = corners[k], corners[(k + 1) % WALL_COUNT]
                quad = np.array([[a[0], a[1], 0], [b[0], b[1], 0], [b[0], b[1], h],
                                 [a[0], a[1], h]])
                walls.append(quad_mesh(quad, (room.wall_repeats,
                                              room.wall_repeats * h / (2 * d))))
            self._add_mesh_body(self._room_file(merge_meshes(walls)), (1, 1, 1), (0, 0, 0),
                                np.eye(3), room.wall_texture, (1, 1, 1, 1), BACKGROUND_LABEL)
        if room.table is not None:
            self._add_object(room.table)

    def build(self, scene: SceneSpec) -> None:
        """Replace the world with ``scene``."""
        self._p.resetSimulation(physicsClientId=self._client)
        self._body_labels = {}
        self._add_room(scene.room)
        for spec in scene.objects:
            self._add_object(spec)
        self._scene = scene

    # -- images -----------------------------------------------------------------------------

    def render(self, camera: CameraSpec, width: int, height: int) -> RenderedView:
        """Render the built scene from ``camera`` at ``width`` x ``height`` pixels."""
        if self._scene is None:
            raise RuntimeError('build a scene before rendering')
        light = self._scene.light
        p = self._p
        _, _, rgba, _, segmentation = p.getCameraImage(
            width, height,
            viewMatrix=opengl_view_matrix(camera.R, camera.t),
            projectionMatrix=opengl_projection_matrix(camera.K, width, height, self.near,
                                                      self.far),
            renderer=p.ER_TINY_RENDERER,
            shadow=int(light.shadow),
            lightDirection=list(light.direction),
            lightColor=list(light.color),
            lightAmbientCoeff=light.ambient,
            lightDiffuseCoeff=light.diffuse,
            lightSpecularCoeff=light.specular,
            physicsClientId=self._client,
        )
        rgb = np.asarray(rgba, dtype=np.uint8).reshape(height, width, 4)[..., :3].copy()
        segmentation = np.asarray(segmentation, dtype=np.int64).reshape(height, width)
        rgb[segmentation == NO_SURFACE] = light.background_rgb
        labels = np.zeros((height, width), dtype=np.uint8)
        for body, label in self._body_labels.items():
            if label != BACKGROUND_LABEL:
                labels[segmentation == body] = label
        return RenderedView(rgb=rgb, labels=labels)
