"""Every parameter of the estimator node, listed from the config dataclasses (no value here).

Two groups: the node's own (``NodeConfig``: topics, mode, model, frames, outputs) and the
pipeline's (the stage configs gathered by ``PipelineConfig``: keyframes, view sets, scheduling,
scale, covariances, relocalization, pose graph). Each parameter's default, description and
range live in its dataclass field; ``tools/write_estimate_config.py`` writes
``config/estimate.yaml`` from these lists (a test checks the file against them).
"""

from typing import Any, Mapping

from raydiff_ros.parameter_fields import parameter_fields
from raydiff_ros.pipeline.config import PipelineConfig, pipeline_parameter_fields
from raydiff_ros.pipeline.view_sets import MIN_VIEWS
from raydiff_ros.ros.node_config import NodeConfig

NODE_PARAMETERS = parameter_fields(NodeConfig)
PIPELINE_PARAMETERS = pipeline_parameter_fields()
ALL_PARAMETERS = NODE_PARAMETERS + PIPELINE_PARAMETERS


def pipeline_config(values: Mapping[str, Any]) -> PipelineConfig:
    """The pipeline config from the pipeline parameters among ``values`` (all must be there).

    Raises:
        ValueError: a value that is invalid, alone or together with the others (the stage
            config's own error, or ``ParameterError``); ``SchedulerError`` (a RuntimeError)
            for an invalid scheduler value, which ``declare_parameters`` refuses earlier.
    """
    return PipelineConfig.from_parameters(
        {spec.name: values[spec.name] for spec in PIPELINE_PARAMETERS}
    )


def check_node_values(values: Mapping[str, Any]) -> PipelineConfig:
    """The pipeline config, after checking the values that must agree across the two groups.

    Rig mode needs ``MIN_VIEWS <= num_cameras <= max_views`` (every camera is one view of a
    rig set); otherwise the view-set builder would refuse every set at run time.

    Raises:
        ValueError: naming the parameters, as :func:`pipeline_config` does.
    """
    config = pipeline_config(values)
    cameras, max_views = values['num_cameras'], config.view_sets.max_views
    if values['mode'] == 'rig' and not MIN_VIEWS <= cameras <= max_views:
        raise ValueError(
            f'mode rig needs {MIN_VIEWS} <= num_cameras <= max_views, got num_cameras '
            f'{cameras} and max_views {max_views} (use mode temporal for one camera)'
        )
    return config
