"""Build the node's estimator from its ``estimator`` parameter.

* ``ray_diffusion``: the model (``model_dir`` or the default model), on ``device``/``dtype``,
  with ``num_samples`` samples per view set;
* any other name registered in ``raydiff_ros.evaluation.estimators`` that works from pixels;
* ``python:<module>:<factory>``: ``factory(**options)`` from an importable module (a custom
  estimator, or a test double). Options: model_dir, device, dtype, num_samples, seed.

An estimator has ``estimate_samples_from_images(images, K)`` or ``estimate_from_images(images,
K)`` (see ``raydiff_ros.pipeline.estimates.estimate_samples``).
"""

import importlib
from pathlib import Path
from typing import Any

PLUGIN_PREFIX = 'python:'


class EstimatorLoadError(RuntimeError):
    """The estimator could not be built (bad name, missing model, corrupt checkpoint...)."""


def build_estimator(name: str, model_dir: str, device: str, dtype: str, num_samples: int,
                    seed: int, refinement: str = 'none') -> Any:
    """The estimator named ``name``, followed by ``refinement`` ('none', 'guided' or 'bundle')."""
    estimator = _base_estimator(name, model_dir, device, dtype, num_samples, seed)
    if refinement == 'none':
        return estimator
    if not hasattr(estimator, 'estimate_from_images'):
        raise EstimatorLoadError(f'refinement {refinement!r} needs an estimator with '
                                 'estimate_from_images')
    from raydiff_ros.refinement.selection import with_refinement
    return with_refinement(estimator, refinement)


def _base_estimator(name: str, model_dir: str, device: str, dtype: str, num_samples: int,
                    seed: int) -> Any:
    try:
        if name.startswith(PLUGIN_PREFIX):
            module_name, _, factory_name = name[len(PLUGIN_PREFIX):].partition(':')
            factory = getattr(importlib.import_module(module_name), factory_name)
            return factory(model_dir=model_dir, device=device, dtype=dtype,
                           num_samples=num_samples, seed=seed)
        if name == 'ray_diffusion':
            from raydiff_ros.inference.adapters import make_ray_diffusion_estimator
            return make_ray_diffusion_estimator(
                seed=seed, model_dir=Path(model_dir) if model_dir else None,
                samples=num_samples, device=device, dtype=dtype)
        from raydiff_ros.evaluation.estimators import create_estimator
        estimator = create_estimator(name, seed=seed)
        if not hasattr(estimator, 'estimate_from_images'):
            raise EstimatorLoadError(f'estimator {name!r} needs ground truth; it cannot run in '
                                     'the node')
        return estimator
    except EstimatorLoadError:
        raise
    except Exception as error:  # noqa: BLE001 - any load failure is reported, never a crash
        raise EstimatorLoadError(f'cannot build estimator {name!r}: '
                                 f'{type(error).__name__}: {error}') from error
