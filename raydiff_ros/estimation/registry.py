"""The one estimator registry: estimators built by name, alike in the node, the console commands
and the evaluation harness.

``create_estimator(name, options)`` builds the estimator registered as ``name`` from
:class:`EstimatorOptions` and wraps it in the chosen refinement. Names:

* the built-in estimators of :data:`BUILTIN_ESTIMATORS`; each is registered as the import path
  ``'module:factory'`` of its factory, imported only when that estimator is built (this low
  package imports no implementation, and building one estimator loads nothing of the others);
* names added at run time with :func:`register_estimator`;
* ``python:<module>:<factory>``: any importable factory (a custom estimator, a test double).

A factory is called as ``factory(options)`` and returns a :class:`PoseEstimator`. A refinement
(:data:`REFINEMENTS`) is a wrapper ``refiner(estimator) -> PoseEstimator`` likewise named by
import path.
"""

from dataclasses import dataclass, field, fields
import importlib
from pathlib import Path
import typing
from typing import Any, Callable, Mapping, Optional, Union

import yaml

from raydiff_ros.estimation.contract import EstimatorError, PoseEstimator
from raydiff_ros.parameter_fields import SCALAR_TYPES, scalar_value

PLUGIN_PREFIX = 'python:'
DEFAULT_ESTIMATOR = 'fused'
"""The estimator of the node, ``make demo`` and ``raydiff-estimate`` unless told otherwise."""
REFINEMENT_NONE = 'none'


class RefinementError(EstimatorError):
    """A refinement was asked of an estimator it cannot refine."""


@dataclass(frozen=True)
class EstimatorOptions:
    """What a factory may use to build an estimator (each ignores what it does not need).

    Attributes:
        seed: seed of everything random in the estimator (same input + seed = same output).
        model_dir: model folder (``config.yaml`` + ``model.safetensors``); None: the shipped
            default model of the estimator (or ``$RAYDIFF_MODEL_DIR``).
        device: 'auto' (CUDA when available), 'cpu', 'cuda' or 'cuda:<n>'.
        dtype: network precision: 'auto', 'float32', 'bfloat16' or 'float16'.
        num_samples: diffusion samples per view set, drawn in one batch.
        refinement: one of :data:`REFINEMENTS`, applied after the estimator.
        warmup: run one small estimate when the estimator is built, so that the first view
            set pays no one-off costs (False for one-shot commands).
        extra: options of one estimator by name (e.g. the ``ClassicalConfig`` fields of
            ``classical_sift``, the noise levels of ``noisy_oracle``); an estimator refuses
            names it does not know.
    """

    seed: int = 0
    model_dir: Optional[Path] = None
    device: str = 'auto'
    dtype: str = 'auto'
    num_samples: int = 1
    refinement: str = REFINEMENT_NONE
    warmup: bool = True
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.num_samples < 1:
            raise EstimatorError(f'num_samples must be >= 1, got {self.num_samples}')
        if self.refinement not in REFINEMENTS:
            raise EstimatorError(f'refinement must be one of {tuple(REFINEMENTS)}, got '
                                 f'{self.refinement!r}')
        if self.model_dir is not None and not isinstance(self.model_dir, Path):
            object.__setattr__(self, 'model_dir', Path(self.model_dir) if self.model_dir
                               else None)


def parse_option(text: str) -> tuple[str, Any]:
    """One ``KEY=VALUE`` option of an estimator (an entry of ``EstimatorOptions.extra``); the
    value is read as YAML, so ``8``, ``0.5``, ``false`` and ``aliked`` keep their types.

    Raises:
        EstimatorError: no ``=``, an empty key, or a value YAML cannot read.
    """
    key, separator, value = text.partition('=')
    if not separator or not key.strip():
        raise EstimatorError(f'expected KEY=VALUE, got {text!r}')
    try:
        parsed = yaml.safe_load(value) if value.strip() else ''
    except yaml.YAMLError as error:
        raise EstimatorError(f'cannot read the value of {text!r}: {error}') from error
    return key.strip(), parsed


def parse_options(text: str) -> dict[str, Any]:
    """Comma-separated ``KEY=VALUE`` options (the node's ``estimator_options``), e.g.
    ``'prior=camera_ray_token, max_pairs=12'``; an empty text gives no options.

    Raises:
        EstimatorError: a malformed pair (see :func:`parse_option`) or a key given twice.
    """
    options: dict[str, Any] = {}
    for item in text.split(','):
        if not item.strip():
            continue
        key, value = parse_option(item)
        if key in options:
            raise EstimatorError(f'option {key!r} given twice in {text!r}')
        options[key] = value
    return options


def _typed_value(value: Any, annotation: Any, what: str) -> Any:
    """``value`` checked against a field's annotation (bool, int, float, str, Optional[...]);
    other annotations are not checked."""
    arguments = typing.get_args(annotation)
    if typing.get_origin(annotation) is Union and type(None) in arguments:
        if value is None:
            return None
        annotation = next(a for a in arguments if a is not type(None))
    if annotation not in SCALAR_TYPES:
        return value
    return scalar_value(value, annotation, what, EstimatorError)


def typed_options(config_classes: Union[type, tuple[type, ...]], extra: Mapping[str, Any],
                  owner: str) -> dict[str, Any]:
    """Options of an estimator (``EstimatorOptions.extra``) checked against the fields of its
    dataclass(es), so that a wrong name or type is refused with a message (e.g.
    ``max_pairs=twelve``) instead of failing somewhere inside the estimator, or being ignored.

    Args:
        config_classes: the dataclass, or several, whose fields the options set; ``()`` for
            an estimator that takes no options.
        extra: option values by name (:func:`parse_options`).
        owner: the estimator's name, for messages.

    Returns:
        The values by name (integers given for numbers as floats).

    Raises:
        EstimatorError: a name that is not a field, or a value not of its field's type.
    """
    if isinstance(config_classes, type):
        config_classes = (config_classes,)
    hints = {name: hint for cls in config_classes
             for name, hint in typing.get_type_hints(cls).items()}
    known = sorted(f.name for cls in config_classes for f in fields(cls))
    unknown = sorted(set(extra) - set(known))
    if unknown:
        if not known:
            raise EstimatorError(f'{owner} takes no options, got {unknown}')
        raise EstimatorError(f'{owner}: unknown option(s) {unknown}; known: {known}')
    return {name: _typed_value(value, hints[name], f'{owner}: option {name}')
            for name, value in extra.items()}


EstimatorFactory = Callable[[EstimatorOptions], PoseEstimator]


@dataclass(frozen=True)
class EstimatorEntry:
    """A registered estimator.

    Attributes:
        factory: the factory, or its import path ``'module:attribute'`` (imported lazily).
        needs_ground_truth: True for reference estimators that read
            ``ViewSetInput.ground_truth``: they serve evaluation only, never the node.
        description: one line for help texts.
    """

    factory: Union[str, EstimatorFactory]
    needs_ground_truth: bool = False
    description: str = ''


BUILTIN_ESTIMATORS = {
    'ground_truth': EstimatorEntry(
        'raydiff_ros.estimation.reference:make_ground_truth', True,
        'the true cameras (a check of the harness)'),
    'random': EstimatorEntry(
        'raydiff_ros.estimation.reference:make_random', False,
        'the chance floor: random rotations and centres'),
    'noisy_oracle': EstimatorEntry(
        'raydiff_ros.estimation.reference:make_noisy_oracle', True,
        'the true cameras with controlled noise'),
    'classical_sift': EstimatorEntry(
        'raydiff_ros.features.classical:make_classical_sift', False,
        'SIFT matches, essential matrices, chained along a spanning tree'),
    'fused': EstimatorEntry(
        'raydiff_ros.fusion.estimator:make_fused', False,
        'the ray prior fused with verified learned matches (XFeat + LighterGlue by default)'),
    'matches': EstimatorEntry(
        'raydiff_ros.fusion.estimator:make_matches', False,
        'verified matches alone, chained and averaged (option matcher=xfeat|aliked|disk|sift)'),
    'ray_diffusion': EstimatorEntry(
        'raydiff_ros.inference.engine:make_ray_diffusion', False,
        'the ray model (diffusion or regression) of model_dir, default models/default'),
    'ray_regression': EstimatorEntry(
        'raydiff_ros.inference.engine:make_ray_regression', False,
        'the one-step ray regression model, default models/default_regression'),
    'camera_ray_token': EstimatorEntry(
        'raydiff_ros.inference.camera_token:make_camera_ray_token', False,
        'learned camera tokens in the ray transformer, one forward pass; default '
        'models/camera_ray_token'),
    'pose_diffusion': EstimatorEntry(
        'raydiff_ros.refinement.pose_diffusion_estimator:make_pose_diffusion', False,
        'camera-parameter diffusion (PoseDiffusion), Sampson-guided sampling; default '
        'models/pose_diffusion'),
}
"""Built-in estimators by name."""

REFINEMENTS = {
    REFINEMENT_NONE: None,
    'guided': 'raydiff_ros.refinement.guided_estimator:with_guidance',
    'bundle': 'raydiff_ros.refinement.refined_estimator:with_bundle_adjustment',
}
"""Refinements after an estimator, by name: import paths of ``refiner(estimator)``."""

_REGISTRY: dict[str, EstimatorEntry] = dict(BUILTIN_ESTIMATORS)


def register_estimator(name: str, factory: Union[str, EstimatorFactory],
                       needs_ground_truth: bool = False, description: str = '',
                       overwrite: bool = False) -> None:
    """Register ``factory`` (or its import path ``'module:attribute'``) under ``name``."""
    if not name or not name.replace('_', '').replace('-', '').isalnum():
        raise EstimatorError(f'estimator names are letters, digits, "_" and "-"; got {name!r}')
    if name in _REGISTRY and not overwrite:
        raise EstimatorError(f'an estimator named {name!r} is already registered')
    _REGISTRY[name] = EstimatorEntry(factory, needs_ground_truth, description)


def available_estimators(include_ground_truth: bool = True) -> tuple[str, ...]:
    """Registered estimator names, sorted (without the reference estimators that read the
    ground truth when ``include_ground_truth`` is False)."""
    return tuple(sorted(name for name, entry in _REGISTRY.items()
                        if include_ground_truth or not entry.needs_ground_truth))


def estimator_entry(name: str) -> EstimatorEntry:
    """The registration of ``name``; a ``python:`` plugin is an entry of its import path."""
    if name.startswith(PLUGIN_PREFIX):
        return EstimatorEntry(name[len(PLUGIN_PREFIX):])
    if name not in _REGISTRY:
        raise EstimatorError(
            f'unknown estimator {name!r}; available: {", ".join(available_estimators())} '
            f'or {PLUGIN_PREFIX}<module>:<factory>')
    return _REGISTRY[name]


def resolve_import_path(target: str) -> Callable:
    """The object named by ``'package.module:attribute'``."""
    module_name, _, attribute = target.partition(':')
    if not module_name or not attribute:
        raise EstimatorError(f'expected "module:attribute", got {target!r}')
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise EstimatorError(f'cannot import {target!r}: {error}') from error


def create_estimator(name: str, options: Optional[EstimatorOptions] = None) -> PoseEstimator:
    """Build the estimator ``name`` with ``options``, followed by ``options.refinement``.

    Raises:
        EstimatorError: unknown name, or the estimator could not be built (any failure of its
            factory: a missing or corrupt model, a bad option), with the reason.
        RefinementError: the refinement cannot refine this estimator.
    """
    options = options or EstimatorOptions()
    entry = estimator_entry(name)
    factory = (resolve_import_path(entry.factory) if isinstance(entry.factory, str)
               else entry.factory)
    try:
        estimator = factory(options)
    except EstimatorError:
        raise
    except Exception as error:  # noqa: BLE001 - any build failure is reported with its cause
        raise EstimatorError(f'cannot build estimator {name!r}: {type(error).__name__}: '
                             f'{error}') from error
    if not isinstance(estimator, PoseEstimator):
        raise EstimatorError(f'the factory of {name!r} returned {type(estimator).__name__}, '
                             'which has no name and estimate(view_set)')
    return with_refinement(estimator, options.refinement)


def with_refinement(estimator: PoseEstimator, refinement: str) -> PoseEstimator:
    """``estimator`` itself for ``'none'``, else wrapped in the refinement's estimator.

    Raises:
        EstimatorError: unknown refinement.
        RefinementError: the refinement cannot refine this estimator.
    """
    if refinement not in REFINEMENTS:
        raise EstimatorError(f'refinement must be one of {tuple(REFINEMENTS)}, got '
                             f'{refinement!r}')
    target = REFINEMENTS[refinement]
    return estimator if target is None else resolve_import_path(target)(estimator)
