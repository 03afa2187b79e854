"""All pipeline parameters as one flat namespace (the node's ROS parameters).

Each stage has its own frozen config dataclass; their field names are unique across stages, so
the node can declare every field as a ROS parameter of the same name and build the configs
from a flat mapping (``PipelineConfig.from_parameters``). Each field carries its default,
description and range once, in its ``parameter(...)`` declaration (see
``raydiff_ros.parameter_fields``); ``pipeline_parameter_fields()`` lists them all: the node
declares them, and ``config/estimate.yaml`` is generated from them.
"""

from dataclasses import dataclass, field, fields, replace
from typing import Any, Mapping

from raydiff_ros.parameter_fields import ParameterField, parameter_fields, scalar_value
from raydiff_ros.pipeline.camera_info import CameraInfoConfig
from raydiff_ros.pipeline.keyframes import KeyframeConfig
from raydiff_ros.pipeline.pose_graph import PoseGraphConfig
from raydiff_ros.pipeline.relocalization import RelocalizationConfig
from raydiff_ros.pipeline.scale import ScaleConfig
from raydiff_ros.pipeline.scheduler import SchedulerConfig
from raydiff_ros.pipeline.uncertainty import UncertaintyConfig
from raydiff_ros.pipeline.view_sets import ViewSetConfig


class ParameterError(ValueError):
    """An unknown parameter name or a value of the wrong type."""


@dataclass(frozen=True)
class PipelineConfig:
    """The configs of every stage (see each class for its parameters)."""

    camera_info: CameraInfoConfig = field(default_factory=CameraInfoConfig)
    keyframes: KeyframeConfig = field(default_factory=KeyframeConfig)
    view_sets: ViewSetConfig = field(default_factory=ViewSetConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    scale: ScaleConfig = field(default_factory=ScaleConfig)
    uncertainty: UncertaintyConfig = field(default_factory=UncertaintyConfig)
    relocalization: RelocalizationConfig = field(default_factory=RelocalizationConfig)
    pose_graph: PoseGraphConfig = field(default_factory=PoseGraphConfig)

    def to_parameters(self) -> dict[str, Any]:
        """Flat ``{parameter name: value}`` of every stage's fields."""
        return {
            f.name: getattr(getattr(self, stage.name), f.name)
            for stage in fields(self)
            for f in fields(getattr(self, stage.name))
        }

    @classmethod
    def from_parameters(cls, values: Mapping[str, Any]) -> 'PipelineConfig':
        """Configs from a flat mapping; names left out keep their defaults.

        Ints are accepted for float parameters; anything else must have the default's type.

        Raises:
            ParameterError: an unknown name or a value of the wrong type.
            ValueError: a value out of range (the stage config's own error).
        """
        defaults = cls()
        owners = {
            f.name: stage.name
            for stage in fields(defaults)
            for f in fields(getattr(defaults, stage.name))
        }
        unknown = sorted(set(values) - set(owners))
        if unknown:
            raise ParameterError(f'unknown pipeline parameters: {", ".join(unknown)}')
        updates: dict[str, dict[str, Any]] = {}
        for name, value in values.items():
            stage = owners[name]
            default = getattr(getattr(defaults, stage), name)
            updates.setdefault(stage, {})[name] = _coerce(name, value, default)
        return replace(
            defaults,
            **{stage: replace(getattr(defaults, stage), **changes)
               for stage, changes in updates.items()},
        )


def _coerce(name: str, value: Any, default: Any) -> Any:
    return scalar_value(value, type(default), f'parameter {name}', ParameterError)


def pipeline_parameter_fields() -> tuple[ParameterField, ...]:
    """``(name, default, info)`` of every field of every stage config, in stage order."""
    return tuple(
        parameter_field
        for stage in fields(PipelineConfig)
        for parameter_field in parameter_fields(stage.default_factory)
    )


def parameter_names() -> tuple[str, ...]:
    """Every pipeline parameter name, in stage order."""
    return tuple(parameter_field.name for parameter_field in pipeline_parameter_fields())
