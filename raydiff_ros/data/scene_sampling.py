"""Random scenes and cameras of the synthetic generator (pure numpy, deterministic per seed).

Two scene types:

``object`` (CO3D-like)
    One main object resting on a textured floor, 0-2 small distractors around it, optional
    walls. Cameras orbit the object at random azimuths, elevations and distances, look at
    (near) its centre with a little roll; one focal length per set with a small per-view
    jitter. The object's bounding box is the crop box of training (label 1).

``rig`` (robot-like)
    Several objects scattered on a floor or a table; a rig of 2-8 cameras with overlapping
    views of the workspace, either surrounding it (wide baselines) or clustered on a compact
    mount (small baselines), optionally inside a room (four walls, furniture boxes). Or an
    *outward* rig: cameras on a small horizontal ring looking outwards into a furnished room,
    neighbouring cameras overlapping by a fraction of their field of view. Each camera has its
    own field of view. Crops cover the whole image.

Units are arbitrary (the training normalisation removes scale): the main object of an object
scene has a largest half-extent of about 0.5; rig objects are smaller.
"""

from dataclasses import dataclass, field
from typing import Optional, Union

import numpy as np

from raydiff_ros.data.assets import (
    BOX_MESH,
    PHOTO_SOURCES,
    PLAIN_MESHES,
    TEXTURE_IMAGES,
    TEXTURED_OBJECTS,
    MeshLibrary,
    MeshRef,
    blob_names,
)
from raydiff_ros.data.camera_models import (
    WORLD_UP,
    intrinsics_from_vertical_fov,
    look_at_rotation,
)
from raydiff_ros.data.photometric import value_range
from raydiff_ros.data.textures import TEXTURE_KINDS
from raydiff_ros.geometry.transforms import axis_angle_rotations

SCENE_TYPES = ('object', 'rig')
RIG_LAYOUTS = ('surround', 'cluster', 'outward')
TEXTURE_SOURCES = ('procedural', 'image', 'photo')
WHITE = (1.0, 1.0, 1.0, 1.0)
MAX_SEED = 2**31 - 1
MAX_PLACEMENT_TRIES = 50
AXIS_UPS = np.array(
    [[0, 0, 1], [0, 0, -1], [1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0]], dtype=np.float64
)
"""Mesh axes that may point up when an object is not kept in its file orientation."""


@dataclass(frozen=True)
class ObjectSceneConfig:
    """Object-centric scenes (CO3D-like)."""

    vertical_fov_deg: tuple = (30.0, 65.0)
    """Range of the set's vertical field of view."""
    focal_jitter: float = 0.03
    """Per-view relative jitter of the focal length."""
    principal_jitter: float = 0.02
    """Principal-point offset, fraction of the image size, uniform in +-."""
    elevation_deg: tuple = (-5.0, 65.0)
    fill_fraction: tuple = (0.45, 0.9)
    """Bounding-sphere diameter / image height at the base distance."""
    distance_jitter: tuple = (0.85, 1.25)
    roll_std_deg: float = 5.0
    target_jitter: float = 0.1
    """Std of the look-at point around the object centre, times the bounding radius."""
    object_half_size: float = 0.5
    stretch: tuple = (0.6, 1.0)
    """Per-axis scale of the normalised mesh (then times ``object_half_size``)."""
    distractors: tuple = (0, 2)
    distractor_scale: tuple = (0.15, 0.35)
    """Distractor size relative to the main object."""
    distractor_distance: tuple = (1.3, 2.5)
    """Distractor distance from the main object, times its bounding radius."""
    min_camera_height: float = 0.05
    """Cameras stay this far above the floor (in units of the object half size)."""


@dataclass(frozen=True)
class RigSceneConfig:
    """Robot-like scenes: several objects, a rig of cameras with overlapping views."""

    objects: tuple = (3, 8)
    workspace_half_size: tuple = (0.35, 0.8)
    object_half_size: tuple = (0.08, 0.3)
    stretch: tuple = (0.6, 1.0)
    min_object_gap: float = 0.8
    """Objects are placed at least this fraction of their summed bounding radii apart."""
    table_probability: float = 0.5
    table_height: tuple = (0.02, 0.1)
    table_margin: float = 1.3
    """Table half-size relative to the workspace half-size."""
    min_camera_height: float = 0.05
    """Cameras stay this far above the floor or table."""
    vertical_fov_deg: tuple = (45.0, 90.0)
    principal_jitter: float = 0.02
    camera_distance: tuple = (0.6, 1.8)
    """Horizontal distance of (the centre of) the rig from the workspace centre."""
    camera_height: tuple = (0.3, 1.6)
    cluster_probability: float = 0.4
    """Probability of a compact rig (small baselines) instead of surrounding cameras."""
    cluster_radius: tuple = (0.05, 0.35)
    surround_sector_deg: tuple = (60.0, 360.0)
    roll_std_deg: float = 3.0
    outward_probability: float = 0.5
    """Probability of an outward-looking ring rig in a furnished room (else inward cameras)."""
    room_probability: float = 0.5
    """Probability that an inward rig scene is a furnished room (four walls, furniture)."""
    room_wall_distance: tuple = (1.15, 1.6)
    """Inward rooms: wall distance from the centre, times the largest camera distance."""
    room_half_size: tuple = (1.5, 3.0)
    """Outward rooms: wall distance from the room centre."""
    room_wall_height: tuple = (2.0, 3.0)
    furniture: tuple = (3, 8)
    """Number of furniture boxes standing against the walls of a room."""
    furniture_half_sizes: tuple = (
        ('table', (0.3, 0.7), (0.25, 0.45), (0.35, 0.45)),
        ('shelf', (0.3, 0.6), (0.12, 0.2), (0.5, 1.0)),
        ('cabinet', (0.25, 0.5), (0.2, 0.3), (0.25, 0.5)),
    )
    """Per kind: half sizes (along the wall, depth, height) of a furniture box."""
    outward_ring_radius: tuple = (0.05, 0.3)
    """Radius of the ring of outward cameras (their centres lie on it)."""
    outward_overlap: tuple = (0.2, 0.7)
    """Overlap of neighbouring outward cameras, fraction of the horizontal field of view."""
    outward_pitch_deg: tuple = (-30.0, 5.0)
    """Pitch of the outward rig (negative looks down)."""
    outward_jitter_deg: float = 4.0
    """Std of the per-camera yaw, pitch and roll jitter of an outward rig."""
    outward_mount_offset: float = 0.3
    """The mount stands within this fraction of the room half size of the room centre."""
    outward_clearance: float = 0.3
    """Clutter keeps this distance from the ring of outward cameras."""
    outward_vertical_fov_deg: tuple = (40.0, 75.0)


@dataclass(frozen=True)
class AppearanceConfig:
    """Textures, lighting and background."""

    texture_size: int = 128
    texture_source_weights: tuple = (('procedural', 0.35), ('image', 0.15), ('photo', 0.5))
    """Relative weights of a surface texture's source: procedural, a whole pybullet_data image,
    or a photo texture (random crop, rotation and colour jitter of ``PHOTO_SOURCES``)."""
    own_texture_probability: float = 0.7
    """Probability that a textured object keeps its own texture image."""
    tint_probability: float = 0.3
    tint: tuple = (0.4, 1.0)
    """Range of each RGB factor of a tint."""
    keep_up_axis_probability: float = 0.5
    """Probability that an object keeps its file's up axis (else a random axis points up)."""
    superquadric_exponents: tuple = (0.2, 2.0)
    superquadric_extents: tuple = (0.4, 1.0)
    wall_probability: float = 0.8
    wall_distance: tuple = (1.4, 2.5)
    """Wall distance from the scene centre, times the scene extent (largest camera distance)."""
    wall_height: tuple = (0.6, 1.5)
    """Wall height, times the scene extent."""
    floor_extent: float = 3.0
    """Floor half-size, times the scene extent."""
    light_color: tuple = (0.8, 1.0)
    shadow_probability: float = 0.2
    ambient: tuple = (0.3, 0.7)
    diffuse: tuple = (0.3, 0.8)
    specular: tuple = (0.0, 0.4)
    light_elevation_deg: tuple = (20.0, 85.0)
    floor_repeats: tuple = (2.0, 12.0)
    mesh_source_weights: tuple = (('blob', 0.45), ('superquadric', 0.2), ('textured', 0.2),
                                  ('plain', 0.15))


@dataclass(frozen=True)
class SceneConfig:
    """What scenes look like (everything except image size and views per set)."""

    object_scene_probability: float = 0.45
    object_scene: ObjectSceneConfig = field(default_factory=ObjectSceneConfig)
    rig_scene: RigSceneConfig = field(default_factory=RigSceneConfig)
    appearance: AppearanceConfig = field(default_factory=AppearanceConfig)


@dataclass(frozen=True)
class TextureSpec:
    """A surface texture: a pybullet_data image (``kind='image'``, ``name`` = relative path), a
    photo texture (``kind='photo'``, ``name`` in ``PHOTO_SOURCES``, crop and colours drawn from
    ``seed``) or a procedural one (``kind`` in ``TEXTURE_KINDS``, drawn from ``seed``)."""

    kind: str
    name: str = ''
    seed: int = 0

    def to_dict(self) -> dict:
        return {'kind': self.kind, 'name': self.name, 'seed': int(self.seed)}


@dataclass(frozen=True)
class ObjectSpec:
    """A mesh placed in the world.

    Attributes:
        mesh: which normalised mesh.
        texture: its texture.
        rgba: (4,) colour multiplied with the texture.
        scale: (3,) per-axis scale applied to the normalised mesh (pybullet ``meshScale``).
        rotation: (3, 3) ``world_R_object``.
        position: (3,) world position of the mesh origin (its bounding-box centre).
        label: mask label (1, 2, ...) of the object.
    """

    mesh: MeshRef
    texture: TextureSpec
    rgba: tuple
    scale: np.ndarray
    rotation: np.ndarray
    position: np.ndarray
    label: int

    def to_dict(self) -> dict:
        return {
            'label': self.label,
            'mesh': self.mesh.to_dict(),
            'texture': self.texture.to_dict(),
            'scale': [float(v) for v in self.scale],
        }


@dataclass(frozen=True)
class RoomSpec:
    """Floor (a square quad at z = 0), optional walls and an optional table slab."""

    floor_half_size: float
    floor_texture: TextureSpec
    floor_repeats: float
    floor_rgba: tuple
    wall_distance: Optional[float]
    wall_height: float
    wall_texture: TextureSpec
    wall_repeats: float
    table: Optional[ObjectSpec] = None


@dataclass(frozen=True)
class LightSpec:
    """TinyRenderer lighting and the colour of pixels no surface covers."""

    direction: tuple
    color: tuple
    ambient: float
    diffuse: float
    specular: float
    shadow: bool
    background_rgb: tuple


@dataclass(frozen=True)
class OrbitLayout:
    """Cameras of an object scene: orbit ``target`` at ``base_distance`` (jittered)."""

    target: np.ndarray
    radius: float
    base_distance: float
    vertical_fov_deg: float
    floor_clearance: float


@dataclass(frozen=True)
class RigLayout:
    """Cameras of a rig scene.

    ``kind`` ``surround`` / ``cluster``: look at points of the workspace box from a sector
    around it or from a ball of ``cluster_radius`` around ``rig_center``. ``outward``: camera
    ``k`` sits on the horizontal ring of radius ``cluster_radius`` around ``rig_center`` at yaw
    ``sector_start + k * (1 - overlap) * hfov`` and looks outwards (that yaw, ``pitch_deg``).
    """

    kind: str
    workspace_min: np.ndarray
    workspace_max: np.ndarray
    rig_center: np.ndarray
    cluster_radius: float
    sector_start: float
    sector_width: float
    vertical_fov_deg: float = 0.0
    overlap: float = 0.0
    pitch_deg: float = 0.0

    @property
    def cluster(self) -> bool:
        return self.kind == 'cluster'


CameraLayout = Union[OrbitLayout, RigLayout]


@dataclass(frozen=True)
class SceneSpec:
    """A whole scene; the renderer builds it, the camera sampler uses its layout."""

    scene_type: str
    objects: tuple
    room: RoomSpec
    light: LightSpec
    layout: CameraLayout
    bbox_labels: tuple
    """Mask labels whose union is the view's bounding box (main object, or all objects)."""

    def to_dict(self) -> dict:
        return {
            'scene_type': self.scene_type,
            'layout': self.layout.kind if isinstance(self.layout, RigLayout) else 'orbit',
            'furniture': sum(o.mesh.source == 'box' for o in self.objects),
            'objects': [o.to_dict() for o in self.objects],
            'floor_texture': self.room.floor_texture.to_dict(),
            'walls': self.room.wall_distance is not None,
            'table': self.room.table is not None,
            'shadow': self.light.shadow,
            'bbox_labels': list(self.bbox_labels),
        }


@dataclass(frozen=True)
class CameraSpec:
    """One camera: pixel ``K`` (3, 3), world-to-camera ``R`` (3, 3) and ``t`` (3,)."""

    K: np.ndarray
    R: np.ndarray
    t: np.ndarray


# ---------------------------------------------------------------------------------------------
# Appearance


def sample_texture(rng: np.random.Generator, appearance: AppearanceConfig) -> TextureSpec:
    """A random texture: a pybullet_data image, a photo texture or a procedural kind (the last
    two with their own seed), weighted by ``appearance.texture_source_weights``."""
    source = _weighted_choice(rng, appearance.texture_source_weights)
    if source == 'image':
        return TextureSpec('image', TEXTURE_IMAGES[int(rng.integers(len(TEXTURE_IMAGES)))])
    if source == 'photo':
        return TextureSpec('photo', PHOTO_SOURCES[int(rng.integers(len(PHOTO_SOURCES)))],
                           seed=int(rng.integers(MAX_SEED)))
    kinds = sorted(TEXTURE_KINDS)
    return TextureSpec(kinds[int(rng.integers(len(kinds)))], seed=int(rng.integers(MAX_SEED)))


def _weighted_choice(rng: np.random.Generator, weighted: tuple) -> str:
    names = [name for name, _ in weighted]
    weights = np.array([weight for _, weight in weighted], dtype=float)
    return names[int(rng.choice(len(names), p=weights / weights.sum()))]


def sample_tint(rng: np.random.Generator, appearance: AppearanceConfig) -> tuple:
    """RGBA multiplier of a texture: white, or a random light colour."""
    if rng.uniform() < appearance.tint_probability:
        return tuple(float(v) for v in rng.uniform(*value_range(appearance.tint), 3)) + (1.0,)
    return WHITE


def sample_light(rng: np.random.Generator, appearance: AppearanceConfig) -> LightSpec:
    """Directional light from the upper hemisphere, random coefficients and background."""
    azimuth = rng.uniform(0, 2 * np.pi)
    elevation = np.radians(rng.uniform(*value_range(appearance.light_elevation_deg)))
    direction = (np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth),
                 np.sin(elevation))
    return LightSpec(
        direction=tuple(float(v) for v in direction),
        color=tuple(float(v) for v in rng.uniform(*value_range(appearance.light_color), 3)),
        ambient=float(rng.uniform(*value_range(appearance.ambient))),
        diffuse=float(rng.uniform(*value_range(appearance.diffuse))),
        specular=float(rng.uniform(*value_range(appearance.specular))),
        shadow=bool(rng.uniform() < appearance.shadow_probability),
        background_rgb=tuple(int(v) for v in rng.integers(0, 256, 3)),
    )


def sample_mesh(rng: np.random.Generator, appearance: AppearanceConfig) -> MeshRef:
    """A random mesh from the weighted sources of ``appearance.mesh_source_weights``."""
    sources = [name for name, _ in appearance.mesh_source_weights]
    weights = np.array([weight for _, weight in appearance.mesh_source_weights], dtype=float)
    source = sources[int(rng.choice(len(sources), p=weights / weights.sum()))]
    if source == 'blob':
        names = blob_names()
        return MeshRef('blob', names[int(rng.integers(len(names)))])
    if source == 'textured':
        return MeshRef('textured', TEXTURED_OBJECTS[int(rng.integers(len(TEXTURED_OBJECTS)))][0])
    if source == 'plain':
        return MeshRef('plain', PLAIN_MESHES[int(rng.integers(len(PLAIN_MESHES)))])
    exponents = rng.uniform(*value_range(appearance.superquadric_exponents), 2)
    extents = rng.uniform(*value_range(appearance.superquadric_extents), 3)
    params = tuple(float(v) for v in np.concatenate([exponents, extents]))
    name = 'sq_' + '_'.join(f'{v:.4f}' for v in params)
    return MeshRef('superquadric', name, params)


def sample_orientation(rng: np.random.Generator, appearance: AppearanceConfig) -> np.ndarray:
    """``world_R_object`` (3, 3): the file's up axis kept (with probability
    ``keep_up_axis_probability``) or one of the six mesh axes turned up, then a random rotation
    about the world vertical."""
    if rng.uniform() < appearance.keep_up_axis_probability:
        tilt = np.eye(3)
    else:
        up = AXIS_UPS[int(rng.integers(len(AXIS_UPS)))]
        axis = np.cross(up, WORLD_UP)
        if np.linalg.norm(axis) == 0:  # up is +z or -z
            tilt = np.eye(3) if up[2] > 0 else axis_angle_rotations(np.array([1.0, 0, 0]), np.pi)
        else:
            tilt = axis_angle_rotations(axis, np.arccos(np.clip(up[2], -1, 1)))
    yaw = axis_angle_rotations(WORLD_UP, rng.uniform(0, 2 * np.pi))
    return yaw @ tilt


def place_on_floor(
    library: MeshLibrary, mesh: MeshRef, scale: np.ndarray, rotation: np.ndarray,
    xy: np.ndarray, floor_height: float = 0.0,
) -> tuple[np.ndarray, float]:
    """Position (3,) putting the mesh's lowest vertex on the floor at ``xy``; and the bounding
    radius of the placed mesh about its origin."""
    vertices = (library.mesh(mesh).vertices * scale) @ rotation.T
    position = np.array([xy[0], xy[1], floor_height - vertices[:, 2].min()])
    return position, float(np.linalg.norm(vertices, axis=1).max())


def sample_object(
    rng: np.random.Generator, library: MeshLibrary, appearance: AppearanceConfig,
    half_size: float, stretch: tuple, xy: np.ndarray, label: int, floor_height: float = 0.0,
) -> tuple[ObjectSpec, float]:
    """A random object standing on the floor at ``xy``; returns it and its bounding radius."""
    mesh = sample_mesh(rng, appearance)
    own = mesh.own_texture
    if own and rng.uniform() < appearance.own_texture_probability:
        texture = TextureSpec('image', own)
    else:
        texture = sample_texture(rng, appearance)
    scale = half_size * rng.uniform(*value_range(stretch), 3)
    rotation = sample_orientation(rng, appearance)
    position, radius = place_on_floor(library, mesh, scale, rotation, xy, floor_height)
    spec = ObjectSpec(mesh=mesh, texture=texture, rgba=sample_tint(rng, appearance),
                      scale=scale, rotation=rotation, position=position, label=label)
    return spec, radius


def _room_spec(
    rng: np.random.Generator, appearance: AppearanceConfig, floor_half: float,
    wall_distance: Optional[float], wall_height: float, table: Optional[ObjectSpec] = None,
) -> RoomSpec:
    return RoomSpec(
        floor_half_size=float(floor_half),
        floor_texture=sample_texture(rng, appearance),
        floor_repeats=float(rng.uniform(*value_range(appearance.floor_repeats))),
        floor_rgba=sample_tint(rng, appearance),
        wall_distance=None if wall_distance is None else float(wall_distance),
        wall_height=float(wall_height),
        wall_texture=sample_texture(rng, appearance),
        wall_repeats=float(rng.uniform(*value_range(appearance.floor_repeats))),
        table=table,
    )


def sample_room(
    rng: np.random.Generator, appearance: AppearanceConfig, extent: float,
    table: Optional[ObjectSpec] = None,
) -> RoomSpec:
    """Floor and (probably) walls around a scene of horizontal size ``extent``."""
    walls = rng.uniform() < appearance.wall_probability
    wall_distance = float(extent * rng.uniform(*value_range(appearance.wall_distance))) if walls \
        else None
    wall_height = float(extent * rng.uniform(*value_range(appearance.wall_height)))
    return _room_spec(rng, appearance, extent * appearance.floor_extent, wall_distance,
                      wall_height, table)


def sample_furniture(
    rng: np.random.Generator, appearance: AppearanceConfig, config: RigSceneConfig,
    wall_distance: float, first_label: int,
) -> list[ObjectSpec]:
    """Furniture boxes (tables, shelves, cabinets) standing on the floor against the four walls
    of a room with walls at ``|x| = |y| = wall_distance``; labels from ``first_label`` on."""
    furniture = []
    kinds = config.furniture_half_sizes
    count = int(rng.integers(config.furniture[0], config.furniture[1] + 1))
    for k in range(count):
        _, width, depth, height = kinds[int(rng.integers(len(kinds)))]
        half = np.array([rng.uniform(*value_range(width)), rng.uniform(*value_range(depth)),
                         rng.uniform(*value_range(height))])
        half[0] = min(half[0], 0.45 * wall_distance)
        side = int(rng.integers(4))
        normal_angle = side * np.pi / 2  # outward normal of the wall
        along = rng.uniform(-1, 1) * (wall_distance - half[0] - half[1])
        normal = np.array([np.cos(normal_angle), np.sin(normal_angle)])
        tangent = np.array([-normal[1], normal[0]])
        xy = normal * (wall_distance - half[1] - 0.01) + tangent * along
        rotation = axis_angle_rotations(WORLD_UP, normal_angle + np.pi / 2)  # x along the wall
        furniture.append(ObjectSpec(
            mesh=MeshRef('box', BOX_MESH), texture=sample_texture(rng, appearance),
            rgba=sample_tint(rng, appearance), scale=half, rotation=rotation,
            position=np.array([xy[0], xy[1], half[2]]), label=first_label + k))
    return furniture


# ---------------------------------------------------------------------------------------------
# Scenes


def sample_object_scene(
    rng: np.random.Generator, library: MeshLibrary, config: SceneConfig
) -> SceneSpec:
    """An object-centric scene (see the module docstring)."""
    cfg, appearance = config.object_scene, config.appearance
    main, radius = sample_object(rng, library, appearance, cfg.object_half_size, cfg.stretch,
                                 np.zeros(2), label=1)
    objects = [main]
    for k in range(int(rng.integers(cfg.distractors[0], cfg.distractors[1] + 1))):
        size = cfg.object_half_size * rng.uniform(*value_range(cfg.distractor_scale))
        angle = rng.uniform(0, 2 * np.pi)
        distance = radius * rng.uniform(*value_range(cfg.distractor_distance))
        xy = distance * np.array([np.cos(angle), np.sin(angle)])
        distractor, _ = sample_object(rng, library, appearance, size, cfg.stretch, xy,
                                      label=k + 2)
        objects.append(distractor)
    fov = float(rng.uniform(*value_range(cfg.vertical_fov_deg)))
    fill = rng.uniform(*value_range(cfg.fill_fraction))
    base_distance = radius / np.tan(np.radians(fov) / 2) / fill
    layout = OrbitLayout(target=main.position.copy(), radius=radius,
                         base_distance=float(base_distance), vertical_fov_deg=fov,
                         floor_clearance=cfg.min_camera_height * cfg.object_half_size)
    extent = base_distance * cfg.distance_jitter[1]
    return SceneSpec(
        scene_type='object', objects=tuple(objects),
        room=sample_room(rng, appearance, extent), light=sample_light(rng, appearance),
        layout=layout, bbox_labels=(1,),
    )


def _scatter(rng: np.random.Generator, half: np.ndarray, placed: list, radius: float,
             gap: float) -> Optional[np.ndarray]:
    """A point (2,) in [-half, half] at least ``gap`` x the summed bounding radii away from the
    (point, radius) pairs placed so far, or None after ``MAX_PLACEMENT_TRIES`` tries."""
    for _ in range(MAX_PLACEMENT_TRIES):
        xy = rng.uniform(-half, half)
        if all(np.linalg.norm(xy - other) > gap * (radius + r) for other, r in placed):
            return xy
    return None


def _scatter_objects(
    rng: np.random.Generator, library: MeshLibrary, config: SceneConfig, half: np.ndarray,
    placed: list, floor_height: float = 0.0,
) -> list[ObjectSpec]:
    """3-8 (``rig_scene.objects``) clutter objects scattered over ``[-half, half]`` away from
    the ``placed`` (point, radius) pairs; labels 1, 2, ..."""
    cfg, appearance = config.rig_scene, config.appearance
    objects = []
    for _ in range(int(rng.integers(cfg.objects[0], cfg.objects[1] + 1))):
        size = rng.uniform(*value_range(cfg.object_half_size))
        xy = _scatter(rng, half, placed, size, cfg.min_object_gap)
        if xy is None:
            continue
        spec, radius = sample_object(rng, library, appearance, size, cfg.stretch, xy,
                                     label=len(objects) + 1, floor_height=floor_height)
        placed.append((xy, radius))
        objects.append(spec)
    return objects


def sample_outward_rig_scene(
    rng: np.random.Generator, library: MeshLibrary, config: SceneConfig
) -> SceneSpec:
    """A furnished room (four walls, furniture boxes, clutter on the floor) seen by a ring of
    cameras looking outwards from a compact mount. Focus: clutter and furniture (the walls and
    floor are not focus, so every view must show furniture or clutter)."""
    cfg, appearance = config.rig_scene, config.appearance
    room_half = float(rng.uniform(*value_range(cfg.room_half_size)))
    mount_xy = rng.uniform(-1, 1, 2) * cfg.outward_mount_offset * room_half
    ring_radius = float(rng.uniform(*value_range(cfg.outward_ring_radius)))
    height = float(rng.uniform(*value_range(cfg.camera_height)))
    placed = [(mount_xy, ring_radius + cfg.outward_clearance)]
    inner = np.full(2, 0.85 * room_half)
    objects = _scatter_objects(rng, library, config, inner, placed)
    objects += sample_furniture(rng, appearance, cfg, room_half, len(objects) + 1)
    wall_height = float(rng.uniform(*value_range(cfg.room_wall_height)))
    layout = RigLayout(
        kind='outward', workspace_min=np.array([-room_half, -room_half, 0.0]),
        workspace_max=np.array([room_half, room_half, wall_height]),
        rig_center=np.array([mount_xy[0], mount_xy[1], height]), cluster_radius=ring_radius,
        sector_start=float(rng.uniform(0, 2 * np.pi)), sector_width=2 * np.pi,
        vertical_fov_deg=float(rng.uniform(*value_range(cfg.outward_vertical_fov_deg))),
        overlap=float(rng.uniform(*value_range(cfg.outward_overlap))),
        pitch_deg=float(rng.uniform(*value_range(cfg.outward_pitch_deg))),
    )
    room = _room_spec(rng, appearance, 1.2 * room_half, room_half, wall_height)
    return SceneSpec(scene_type='rig', objects=tuple(objects), room=room,
                     light=sample_light(rng, appearance), layout=layout,
                     bbox_labels=tuple(o.label for o in objects))


def sample_rig_scene(
    rng: np.random.Generator, library: MeshLibrary, config: SceneConfig
) -> SceneSpec:
    """A robot-like scene (see the module docstring): outward with probability
    ``rig_scene.outward_probability``, else inward cameras on a workspace, in a furnished room
    with probability ``rig_scene.room_probability``."""
    cfg, appearance = config.rig_scene, config.appearance
    if rng.uniform() < cfg.outward_probability:
        return sample_outward_rig_scene(rng, library, config)
    in_room = bool(rng.uniform() < cfg.room_probability)
    half = rng.uniform(*value_range(cfg.workspace_half_size), 2)
    floor_height, table = 0.0, None
    if rng.uniform() < cfg.table_probability:
        floor_height = float(rng.uniform(*value_range(cfg.table_height)))
        table_scale = np.array([half[0] * cfg.table_margin, half[1] * cfg.table_margin,
                                floor_height / 2])
        table = ObjectSpec(
            mesh=MeshRef('textured', 'jenga/jenga.obj'), texture=sample_texture(rng, appearance),
            rgba=sample_tint(rng, appearance), scale=table_scale, rotation=np.eye(3),
            position=np.array([0.0, 0.0, floor_height / 2]), label=0)
    objects = _scatter_objects(rng, library, config, half, [], floor_height)
    top = max([floor_height] + [o.position[2] + np.linalg.norm(
        library.mesh(o.mesh).vertices * o.scale, axis=1).max() for o in objects])
    workspace_min = np.array([-half[0], -half[1], floor_height])
    workspace_max = np.array([half[0], half[1], max(top, floor_height + cfg.min_camera_height)])
    cluster = bool(rng.uniform() < cfg.cluster_probability)
    rig_azimuth = rng.uniform(0, 2 * np.pi)
    rig_distance = rng.uniform(*value_range(cfg.camera_distance))
    rig_center = np.array([rig_distance * np.cos(rig_azimuth), rig_distance * np.sin(rig_azimuth),
                           floor_height + rng.uniform(*value_range(cfg.camera_height))])
    layout = RigLayout(
        kind='cluster' if cluster else 'surround', workspace_min=workspace_min,
        workspace_max=workspace_max, rig_center=rig_center,
        cluster_radius=float(rng.uniform(*value_range(cfg.cluster_radius))),
        sector_start=float(rng.uniform(0, 2 * np.pi)),
        sector_width=float(np.radians(rng.uniform(*value_range(cfg.surround_sector_deg)))),
    )
    extent = cfg.camera_distance[1] + float(half.max())
    focus = tuple(o.label for o in objects)
    if in_room:
        wall_distance = extent * float(rng.uniform(*value_range(cfg.room_wall_distance)))
        objects += sample_furniture(rng, appearance, cfg, wall_distance, len(objects) + 1)
        room = _room_spec(rng, appearance, 1.2 * wall_distance, wall_distance,
                          float(rng.uniform(*value_range(cfg.room_wall_height))), table)
    else:
        room = sample_room(rng, appearance, extent, table)
    return SceneSpec(
        scene_type='rig', objects=tuple(objects), room=room,
        light=sample_light(rng, appearance), layout=layout, bbox_labels=focus,
    )


def sample_scene(rng: np.random.Generator, library: MeshLibrary, config: SceneConfig) -> SceneSpec:
    """An object scene with probability ``config.object_scene_probability``, else a rig scene."""
    if rng.uniform() < config.object_scene_probability:
        return sample_object_scene(rng, library, config)
    return sample_rig_scene(rng, library, config)


# ---------------------------------------------------------------------------------------------
# Cameras


def _principal_offset(rng: np.random.Generator, jitter: float, width: int, height: int):
    return rng.uniform(-jitter, jitter, 2) * np.array([width, height])


def sample_orbit_camera(
    rng: np.random.Generator, layout: OrbitLayout, config: ObjectSceneConfig,
    width: int, height: int,
) -> CameraSpec:
    """A camera orbiting the main object of an object scene."""
    fov = layout.vertical_fov_deg
    focal_scale = 1 + rng.uniform(-config.focal_jitter, config.focal_jitter)
    fov = float(np.degrees(2 * np.arctan(np.tan(np.radians(fov) / 2) / focal_scale)))
    K = intrinsics_from_vertical_fov(fov, width, height,
                                     _principal_offset(rng, config.principal_jitter, width,
                                                       height))
    azimuth = rng.uniform(0, 2 * np.pi)
    elevation = np.radians(rng.uniform(*value_range(config.elevation_deg)))
    distance = layout.base_distance * rng.uniform(*value_range(config.distance_jitter))
    offset = distance * np.array([np.cos(elevation) * np.cos(azimuth),
                                  np.cos(elevation) * np.sin(azimuth), np.sin(elevation)])
    center = layout.target + offset
    center[2] = max(center[2], layout.floor_clearance)
    target = layout.target + rng.normal(0, config.target_jitter * layout.radius, 3)
    roll = np.radians(rng.normal(0, config.roll_std_deg))
    R = look_at_rotation(center, target, roll)
    return CameraSpec(K=K, R=R, t=-R @ center)


def sample_outward_camera(
    rng: np.random.Generator, layout: RigLayout, config: RigSceneConfig, width: int, height: int,
    view_index: int,
) -> CameraSpec:
    """Camera ``view_index`` of an outward ring rig (see :class:`RigLayout`): its centre on the
    ring (radius ``layout.cluster_radius`` around ``rig_center``, horizontal), its optical axis
    outwards at the ring yaw, both jittered by ``config.outward_jitter_deg``; neighbouring
    cameras overlap by ``layout.overlap`` of the horizontal field of view."""
    K = intrinsics_from_vertical_fov(layout.vertical_fov_deg, width, height,
                                     _principal_offset(rng, config.principal_jitter, width,
                                                       height))
    hfov = 2 * np.arctan(width / 2 / K[0, 0])
    jitter = np.radians(config.outward_jitter_deg)
    yaw = layout.sector_start + view_index * (1 - layout.overlap) * hfov
    yaw_position = yaw + rng.normal(0, jitter)
    yaw_axis = yaw + rng.normal(0, jitter)
    pitch = np.radians(layout.pitch_deg) + rng.normal(0, jitter)
    center = layout.rig_center + layout.cluster_radius * np.array(
        [np.cos(yaw_position), np.sin(yaw_position), 0.0])
    direction = np.array([np.cos(pitch) * np.cos(yaw_axis), np.cos(pitch) * np.sin(yaw_axis),
                          np.sin(pitch)])
    R = look_at_rotation(center, center + direction, rng.normal(0, jitter))
    return CameraSpec(K=K, R=R, t=-R @ center)


def sample_rig_camera(
    rng: np.random.Generator, layout: RigLayout, config: RigSceneConfig, width: int, height: int,
    view_index: int = 0,
) -> CameraSpec:
    """A camera of a rig scene: inward ones look at a random point of the workspace; outward
    ones follow :func:`sample_outward_camera`."""
    if layout.kind == 'outward':
        return sample_outward_camera(rng, layout, config, width, height, view_index)
    fov = float(rng.uniform(*value_range(config.vertical_fov_deg)))
    K = intrinsics_from_vertical_fov(fov, width, height,
                                     _principal_offset(rng, config.principal_jitter, width,
                                                       height))
    if layout.cluster:
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        radius = layout.cluster_radius * rng.uniform() ** (1 / 3)  # uniform in the ball
        center = layout.rig_center + direction * radius
    else:
        azimuth = layout.sector_start + rng.uniform(0, layout.sector_width)
        distance = rng.uniform(*value_range(config.camera_distance))
        height = layout.workspace_min[2] + rng.uniform(*value_range(config.camera_height))
        center = np.array([distance * np.cos(azimuth), distance * np.sin(azimuth), height])
    center[2] = max(center[2], layout.workspace_min[2] + config.min_camera_height)
    target = rng.uniform(layout.workspace_min, layout.workspace_max)
    roll = np.radians(rng.normal(0, config.roll_std_deg))
    R = look_at_rotation(center, target, roll)
    return CameraSpec(K=K, R=R, t=-R @ center)


def sample_camera(
    rng: np.random.Generator, scene: SceneSpec, config: SceneConfig, width: int, height: int,
    view_index: int = 0,
) -> CameraSpec:
    """Camera ``view_index`` of a view set of ``scene`` (dispatches on its layout; only outward
    rigs use the index)."""
    if isinstance(scene.layout, OrbitLayout):
        return sample_orbit_camera(rng, scene.layout, config.object_scene, width, height)
    return sample_rig_camera(rng, scene.layout, config.rig_scene, width, height, view_index)
