"""Render synthetic view sets and write them as shards, in parallel processes.

View set ``i`` of a run with seed ``s`` is drawn from ``numpy.random.default_rng(
SeedSequence([s, i]))`` alone, so its content does not depend on the shard size, the number of
workers or the order of rendering. Shard ``k`` holds sets ``k * S .. (k + 1) * S - 1``
(``S = sets_per_shard``) and is named ``shard_{k:05d}.npz``; ``index.json`` lists the shards.

Per view set: sample a scene; build it; for each of the V views sample a camera and render it,
re-sampling the camera (up to ``max_camera_attempts`` times) while the focus objects cover less
than ``min_visible_fraction`` of the image; if a view still fails, the whole scene is
re-sampled (up to ``max_scene_attempts`` times). Each accepted view then gets its photometric
variation (``photometric.py``: exposure, white balance, gamma, blur, noise) drawn from the same
generator.

An existing shard whose metadata matches the run (seed, settings, set range) is kept, so an
interrupted run resumes where it stopped.
"""

from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
import hashlib
import json
import multiprocessing
from pathlib import Path
import tempfile
import time
from typing import Callable, Optional, Union

import numpy as np

from raydiff_ros.data.assets import MeshLibrary
from raydiff_ros.data.photometric import PhotometricConfig, apply_photometric, sample_photometric
from raydiff_ros.data.renderer import (
    DEFAULT_FAR,
    DEFAULT_NEAR,
    PyBulletRenderer,
    RenderedView,
)
from raydiff_ros.data.scene_sampling import SceneConfig, SceneSpec, sample_camera, sample_scene
from raydiff_ros.data.shards import (
    ShardError,
    ViewSetRecord,
    read_shard_metadata,
    write_shard,
)
from raydiff_ros.progress import Progress, no_progress

PathLike = Union[str, Path]

INDEX_FILE = 'index.json'
SHARD_NAME = 'shard_{:05d}.npz'
GENERATOR_NAME = 'raydiff_ros.data.generate'
MIN_VIEWS_PER_SET = 2
MAX_VIEWS_PER_SET = 64


class GenerationError(RuntimeError):
    """A view set could not be generated (e.g. no camera sees the objects)."""


@dataclass(frozen=True)
class GeneratorConfig:
    """Everything that determines the rendered data besides the seed and the set index."""

    image_width: int = 320
    image_height: int = 240
    views_per_set: int = 8
    scene: SceneConfig = field(default_factory=SceneConfig)
    photometric: PhotometricConfig = field(default_factory=PhotometricConfig)
    min_visible_fraction: float = 0.01
    """Fewest pixels (fraction of the image) the focus objects must cover in every view."""
    max_camera_attempts: int = 30
    max_scene_attempts: int = 5
    near: float = DEFAULT_NEAR
    far: float = DEFAULT_FAR

    def __post_init__(self) -> None:
        if self.image_width < 8 or self.image_height < 8:
            raise ValueError(f'image size must be at least 8 x 8, got {self.image_width} x '
                             f'{self.image_height}')
        if not MIN_VIEWS_PER_SET <= self.views_per_set <= MAX_VIEWS_PER_SET:
            raise ValueError(f'views_per_set must be in [{MIN_VIEWS_PER_SET}, '
                             f'{MAX_VIEWS_PER_SET}], got {self.views_per_set}')
        if not 0 <= self.scene.object_scene_probability <= 1:
            raise ValueError('object_scene_probability must be in [0, 1]')
        rig = self.scene.rig_scene
        for name in ('outward_probability', 'room_probability', 'cluster_probability'):
            if not 0 <= getattr(rig, name) <= 1:
                raise ValueError(f'{name} must be in [0, 1]')
        if self.max_camera_attempts < 1 or self.max_scene_attempts < 1:
            raise ValueError('attempt limits must be positive')

    def to_dict(self) -> dict:
        return asdict(self)

    def digest(self) -> str:
        """SHA-256 of the settings (stored in shards to check that a resumed run matches)."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()


def view_set_rng(seed: int, set_index: int) -> np.random.Generator:
    """The generator that draws view set ``set_index`` of a run with ``seed``."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(set_index)]))


def focus_bbox(labels: np.ndarray, focus: tuple) -> Optional[np.ndarray]:
    """``[x0, y0, x1, y1]`` (exclusive max) of the pixels whose label is in ``focus``."""
    rows, cols = np.nonzero(np.isin(labels, focus))
    if rows.size == 0:
        return None
    return np.array([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1], dtype=np.float64)


def _render_views(rng: np.random.Generator, scene: SceneSpec, config: GeneratorConfig,
                  renderer: PyBulletRenderer) -> Optional[tuple]:
    width, height = config.image_width, config.image_height
    min_pixels = config.min_visible_fraction * width * height
    views = []
    for index in range(config.views_per_set):
        for _ in range(config.max_camera_attempts):
            camera = sample_camera(rng, scene, config.scene, width, height, index)
            view = renderer.render(camera, width, height)
            if np.isin(view.labels, scene.bbox_labels).sum() >= min_pixels:
                params = sample_photometric(rng, config.photometric)
                view = RenderedView(rgb=apply_photometric(view.rgb, params), labels=view.labels)
                views.append((camera, view))
                break
        else:
            return None
    return views


def render_view_set(seed: int, set_index: int, config: GeneratorConfig,
                    renderer: PyBulletRenderer) -> ViewSetRecord:
    """Render view set ``set_index`` of a run with ``seed`` (deterministic)."""
    rng = view_set_rng(seed, set_index)
    views, attempts = None, 0
    while views is None and attempts < config.max_scene_attempts:
        attempts += 1
        scene = sample_scene(rng, renderer.library, config.scene)
        renderer.build(scene)
        views = _render_views(rng, scene, config, renderer)
    if views is None:
        raise GenerationError(f'view set {set_index}: no scene gave {config.views_per_set} '
                              f'views of its objects in {config.max_scene_attempts} attempts')
    metadata = scene.to_dict()
    metadata.update(seed=int(seed), set_index=int(set_index), scene_attempts=attempts)
    return ViewSetRecord(
        images=np.stack([view.rgb for _, view in views]),
        masks=np.stack([view.labels for _, view in views]),
        K=np.stack([camera.K for camera, _ in views]).astype(np.float64),
        R=np.stack([camera.R for camera, _ in views]).astype(np.float64),
        t=np.stack([camera.t for camera, _ in views]).astype(np.float64),
        bboxes=np.stack([focus_bbox(view.labels, scene.bbox_labels) for _, view in views]),
        metadata=metadata,
    )


@dataclass(frozen=True)
class ShardJob:
    """One shard to render: sets ``first_set .. first_set + num_sets - 1``."""

    path: Path
    shard_index: int
    first_set: int
    num_sets: int
    seed: int
    config: GeneratorConfig

    def header(self) -> dict:
        return {
            'generator': GENERATOR_NAME,
            'seed': self.seed,
            'shard_index': self.shard_index,
            'set_indices': list(range(self.first_set, self.first_set + self.num_sets)),
            'config_digest': self.config.digest(),
            'config': self.config.to_dict(),
        }

    def is_done(self) -> bool:
        """Whether ``path`` already holds exactly this shard."""
        try:
            metadata = read_shard_metadata(self.path)
        except ShardError:
            return False
        expected = self.header()
        return all(metadata.get(key) == expected[key]
                   for key in ('seed', 'set_indices', 'config_digest'))


def render_shard(job: ShardJob) -> dict:
    """Render and write one shard; returns ``{'path', 'num_sets', 'seconds'}``."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix='raydiff_render_') as work_dir:
        library = MeshLibrary(Path(work_dir))
        with PyBulletRenderer(library, job.config.scene.appearance.texture_size, job.config.near,
                              job.config.far) as renderer:
            records = [render_view_set(job.seed, index, job.config, renderer)
                       for index in range(job.first_set, job.first_set + job.num_sets)]
    write_shard(job.path, records, job.header())
    return {'path': str(job.path), 'num_sets': job.num_sets,
            'seconds': time.perf_counter() - start}


def plan_shards(out_dir: PathLike, num_sets: int, sets_per_shard: int, seed: int,
                config: GeneratorConfig) -> list[ShardJob]:
    """The shard jobs covering sets ``0 .. num_sets - 1``."""
    if num_sets < 1 or sets_per_shard < 1:
        raise ValueError('num_sets and sets_per_shard must be positive')
    out = Path(out_dir)
    return [ShardJob(path=out / SHARD_NAME.format(k), shard_index=k, first_set=first,
                     num_sets=min(sets_per_shard, num_sets - first), seed=seed, config=config)
            for k, first in enumerate(range(0, num_sets, sets_per_shard))]


@dataclass(frozen=True)
class GenerationSummary:
    """What a generation run did."""

    out_dir: Path
    num_sets: int
    num_views: int
    shards_written: int
    shards_kept: int
    views_rendered: int
    seconds: float

    @property
    def views_per_second(self) -> float:
        """Views rendered (not kept from an earlier run) per second of this run."""
        return self.views_rendered / self.seconds if self.seconds > 0 else 0.0


def generate_dataset(out_dir: PathLike, num_sets: int, seed: int,
                     config: GeneratorConfig = GeneratorConfig(), sets_per_shard: int = 16,
                     workers: int = 1, overwrite: bool = False,
                     on_shard: Optional[Callable[[dict], None]] = None,
                     progress: Progress = no_progress) -> GenerationSummary:
    """Render ``num_sets`` view sets into shards under ``out_dir`` and write ``index.json``.

    Args:
        out_dir: output folder (created).
        num_sets: view sets to render.
        seed: run seed.
        config: generator settings.
        sets_per_shard: view sets per shard file.
        workers: parallel processes (1 renders in this process).
        overwrite: re-render shards that already exist and match.
        on_shard: called with each finished shard's summary dict (``render_shard``).
        progress: hook counting the view sets of the run, those of kept shards included.
    """
    if workers < 1:
        raise ValueError(f'workers must be positive, got {workers}')
    start = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jobs = plan_shards(out, num_sets, sets_per_shard, seed, config)
    todo = [job for job in jobs if overwrite or not job.is_done()]
    sets_kept = num_sets - sum(job.num_sets for job in todo)
    with progress('render', total=num_sets, unit='set', initial=sets_kept) as bar:

        def finished(result: dict) -> None:
            bar.update(result['num_sets'])
            if on_shard:
                on_shard(result)

        if workers == 1 or len(todo) <= 1:
            for job in todo:
                finished(render_shard(job))
        else:
            context = multiprocessing.get_context('spawn')
            with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
                for result in pool.map(render_shard, todo):
                    finished(result)
    index = {
        'generator': GENERATOR_NAME,
        'seed': seed,
        'num_sets': num_sets,
        'views_per_set': config.views_per_set,
        'image_size': [config.image_width, config.image_height],
        'config_digest': config.digest(),
        'shards': [{'file': job.path.name, 'first_set': job.first_set, 'num_sets': job.num_sets}
                   for job in jobs],
    }
    (out / INDEX_FILE).write_text(json.dumps(index, indent=1, sort_keys=True) + '\n')
    return GenerationSummary(out_dir=out, num_sets=num_sets,
                             num_views=num_sets * config.views_per_set,
                             shards_written=len(todo), shards_kept=len(jobs) - len(todo),
                             views_rendered=sum(job.num_sets for job in todo)
                             * config.views_per_set,
                             seconds=time.perf_counter() - start)
