"""A ray-cast scene of textured axis-aligned boxes on a textured floor, seen by camera rigs.

Exact and dependency-free (numpy): every pixel's ray (OpenCV camera: x right, y down,
z forward; world-to-camera R, t; pixel K, pixel centres at +0.5) is intersected with every box
face and the floor; the nearest hit is coloured by its face's procedural texture (multi-scale
noise and checkers, so feature matchers find corners). Pixels that hit nothing see a vertical
colour gradient (the sky). World frame: z up, the floor is z = 0.

Used by the ROS demo (a rig of cameras around objects on a table) and by benchmarks.
"""

from dataclasses import dataclass, field

import numpy as np

TEXTURE_SIZE = 256
FLOOR_HALF_EXTENT_M = 2.5
"""The floor is the square |x|, |y| <= this (a table or room floor), one texture over it."""
SKY_TOP = np.array([120.0, 160.0, 220.0])
SKY_BOTTOM = np.array([220.0, 225.0, 235.0])
EPSILON = 1e-9
TEXTURE_SCALES = (4, 16, 64)
"""Cells per side of the noise layers of a procedural texture."""
WORLD_UP = (0.0, 0.0, 1.0)
RIG_TARGET = (0.0, 0.0, 0.2)


def random_box_texture(rng: np.random.Generator, size: int = TEXTURE_SIZE) -> np.ndarray:
    """(size, size, 3) uint8 texture: smoothed multi-scale noise plus a random checker."""
    texture = np.zeros((size, size, 3))
    for cells in TEXTURE_SCALES:
        coarse = rng.uniform(0, 255, (cells, cells, 3))
        texture += np.kron(coarse, np.ones((size // cells, size // cells, 1))) / 3.0
    checker_cells = rng.integers(3, 9)
    yy, xx = np.mgrid[0:size, 0:size] * checker_cells // size
    texture *= (0.7 + 0.3 * ((xx + yy) % 2))[..., None]
    return np.clip(texture, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Box:
    """Axis-aligned box: ``minimum`` and ``maximum`` corners (3,) in metres, one texture."""

    minimum: np.ndarray
    maximum: np.ndarray
    texture: np.ndarray


@dataclass
class BoxScene:
    """Boxes on a square floor of half extent FLOOR_HALF_EXTENT_M with one texture."""

    boxes: list[Box]
    floor_texture: np.ndarray
    sky: bool = True
    _faces: list = field(default_factory=list, init=False, repr=False)

    @classmethod
    def random(cls, seed: int, num_boxes: int = 4, extent_m: float = 0.6) -> 'BoxScene':
        """A seeded table-top scene: ``num_boxes`` boxes within +-extent_m of the origin."""
        rng = np.random.default_rng(seed)
        boxes = []
        for _ in range(num_boxes):
            size = rng.uniform(0.15, 0.45, 3)
            centre = np.append(rng.uniform(-extent_m, extent_m, 2), size[2] / 2)
            boxes.append(Box(centre - size / 2, centre + size / 2, random_box_texture(rng)))
        return cls(boxes=boxes, floor_texture=random_box_texture(rng))

    def render(self, K: np.ndarray, R: np.ndarray, t: np.ndarray,
               width: int, height: int) -> np.ndarray:
        """(height, width, 3) uint8 RGB image of the scene for one camera.

        K: (3, 3) pixel intrinsics; R (3, 3), t (3,): world-to-camera (x_cam = R x_world + t).
        """
        u, v = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
        pixels = np.stack([u, v, np.ones_like(u)], axis=-1).reshape(-1, 3)
        directions = (pixels @ np.linalg.inv(K).T) @ R            # world-frame ray directions
        origin = -R.T @ t
        depth = np.full(len(directions), np.inf)
        colour = np.zeros((len(directions), 3))
        if self.sky:
            elevation = np.clip(directions[:, 2] / np.linalg.norm(directions, axis=1), 0, 1)
            colour[:] = SKY_BOTTOM + (SKY_TOP - SKY_BOTTOM) * elevation[:, None]
        self._hit_floor(origin, directions, depth, colour)
        for box in self.boxes:
            self._hit_box(box, origin, directions, depth, colour)
        return np.clip(colour, 0, 255).astype(np.uint8).reshape(height, width, 3)

    def _hit_floor(self, origin, directions, depth, colour) -> None:
        dz = directions[:, 2]
        with np.errstate(divide='ignore', invalid='ignore'):
            hit_t = np.where(np.abs(dz) > EPSILON, -origin[2] / dz, np.inf)
        hit = (hit_t > 0) & (hit_t < depth)
        points = origin + hit_t[hit, None] * directions[hit]
        on_floor = np.all(np.abs(points[:, :2]) <= FLOOR_HALF_EXTENT_M, axis=1)
        index = np.flatnonzero(hit)[on_floor]
        span = 2.0 * FLOOR_HALF_EXTENT_M
        colour[index] = sample(self.floor_texture,
                               (points[on_floor, 0] + FLOOR_HALF_EXTENT_M) / span,
                               (points[on_floor, 1] + FLOOR_HALF_EXTENT_M) / span)
        depth[index] = hit_t[index]

    def _hit_box(self, box: Box, origin, directions, depth, colour) -> None:
        for axis in range(3):
            for bound in (box.minimum[axis], box.maximum[axis]):
                d = directions[:, axis]
                with np.errstate(divide='ignore', invalid='ignore'):
                    hit_t = np.where(np.abs(d) > EPSILON, (bound - origin[axis]) / d, np.inf)
                candidates = (hit_t > 0) & (hit_t < depth)
                points = origin + hit_t[candidates, None] * directions[candidates]
                others = [a for a in range(3) if a != axis]
                inside = np.all([(points[:, a] >= box.minimum[a] - EPSILON)
                                 & (points[:, a] <= box.maximum[a] + EPSILON)
                                 for a in others], axis=0)
                index = np.flatnonzero(candidates)[inside]
                span = box.maximum - box.minimum
                s = (points[inside, others[0]] - box.minimum[others[0]]) / span[others[0]]
                r = (points[inside, others[1]] - box.minimum[others[1]]) / span[others[1]]
                colour[index] = sample(box.texture, s, r)
                depth[index] = hit_t[index]


def sample(texture: np.ndarray, s: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Nearest texel of a tiling texture at coordinates (s, r) in texture units (1 = size)."""
    size = texture.shape[0]
    columns = np.floor(np.mod(s, 1.0) * size).astype(np.int64) % size
    rows = np.floor(np.mod(r, 1.0) * size).astype(np.int64) % size
    return texture[rows, columns].astype(np.float64)


def look_at(center: np.ndarray, target: np.ndarray,
            up: tuple = WORLD_UP) -> tuple[np.ndarray, np.ndarray]:
    """World-to-camera (R (3, 3), t (3,)) of an optical camera at ``center`` facing ``target``."""
    forward = target - center
    forward = forward / np.linalg.norm(forward)
    right = np.cross(forward, np.asarray(up, dtype=np.float64))
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    R = np.stack([right, down, forward])
    return R, -R @ center


def ring_rig(num_cameras: int, radius_m: float, height_m: float, seed: int,
             target: tuple = RIG_TARGET) -> tuple[np.ndarray, np.ndarray]:
    """(R (N, 3, 3), t (N, 3)) of a rig of cameras on an arc around ``target``, seeded jitter.

    Neighbouring cameras are 25 to 40 degrees apart, so their views overlap.
    """
    rng = np.random.default_rng(seed)
    angles = np.cumsum(np.r_[0.0, rng.uniform(np.radians(25), np.radians(40), num_cameras - 1)])
    R, t = np.empty((num_cameras, 3, 3)), np.empty((num_cameras, 3))
    for k, angle in enumerate(angles):
        center = np.array([radius_m * np.cos(angle), radius_m * np.sin(angle),
                           height_m + rng.uniform(-0.1, 0.1)])
        R[k], t[k] = look_at(center, np.asarray(target) + rng.uniform(-0.05, 0.05, 3))
    return R, t
