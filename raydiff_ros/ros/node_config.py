"""The estimator node's own parameters (topics, mode, model, frames, outputs, timers).

Each field carries its default, description, range or choices and read-only flag once, in its
``parameter(...)`` declaration (``raydiff_ros.parameter_fields``); the node declares a ROS
parameter of the same name from it and ``config/estimate.yaml`` is generated from it. The
pipeline's parameters are the stage configs gathered by ``raydiff_ros.pipeline.config``.
Frames: every published transform is ``target_T_source`` between optical frames.
"""

from dataclasses import dataclass

from raydiff_ros.estimation import DEFAULT_ESTIMATOR, REFINEMENTS
from raydiff_ros.parameter_fields import check_fields, parameter

#: Most cameras one node reads (camera indices 0 to MAX_CAMERAS - 1).
MAX_CAMERAS = 16


@dataclass(frozen=True)
class NodeConfig:
    """Parameters of the estimator node itself (ROS parameters of the same names)."""

    autostart: bool = parameter(
        True, 'configure and activate at start-up (false: leave it to a lifecycle manager)'
    )
    num_cameras: int = parameter(
        2,
        'number of cameras; camera i is read from image_<i> and camera_info_<i> (remap them)',
        minimum=1,
        maximum=MAX_CAMERAS,
        read_only=True,
    )
    image_transport: str = parameter(
        'raw',
        'raw: sensor_msgs/Image on image_<i>; compressed: '
        'sensor_msgs/CompressedImage on image_<i>/compressed',
        choices=('raw', 'compressed'),
        read_only=True,
    )
    image_qos: str = parameter(
        'sensor_data',
        'QoS of the image and camera-info subscriptions '
        '(sensor_data = best effort, as REP 2003 asks of consumers)',
        choices=('sensor_data', 'reliable'),
        read_only=True,
    )
    mode: str = parameter(
        'rig',
        'rig: one synchronised image per camera (calibration); '
        'temporal: the last diverse keyframes (relocalization, sparse mapping)',
        choices=('rig', 'temporal'),
    )
    estimator: str = parameter(
        DEFAULT_ESTIMATOR,
        'a name of the estimator registry (raydiff_ros.estimation: fused, ray_diffusion, '
        'ray_regression, camera_ray_token, pose_diffusion, matches, classical_sift, random) or '
        'python:<module>:<factory>',
        read_only=True,
    )
    estimator_options: str = parameter(
        '',
        'options of the estimator as comma-separated KEY=VALUE (the --option of the CLIs), '
        'e.g. "prior=camera_ray_token, max_pairs=12" for fused or "guidance=false" for '
        'pose_diffusion; an estimator refuses names it does not know',
        read_only=True,
    )
    model_dir: str = parameter(
        '',
        'model folder (config.yaml + model.safetensors) of a learned estimator (for fused: of '
        'its prior); empty: the shipped model of the estimator (ray_diffusion: '
        '$RAYDIFF_MODEL_DIR first)',
        read_only=True,
    )
    device: str = parameter(
        'auto',
        'inference device: auto (CUDA when available), cpu, cuda, cuda:<n>',
        read_only=True,
    )
    dtype: str = parameter(
        'auto',
        'network precision: auto (bfloat16 on CUDA, float32 on CPU), float32, bfloat16, float16',
        choices=('auto', 'float32', 'bfloat16', 'float16'),
        read_only=True,
    )
    num_samples: int = parameter(
        8,
        'diffusion samples per view set, drawn in one batch; their spread gives the covariances',
        minimum=1,
        maximum=64,
        read_only=True,
    )
    seed: int = parameter(
        0,
        'seed of the diffusion noise (same input + seed = same output)',
        minimum=0,
        maximum=2**31 - 1,
        read_only=True,
    )
    frame_prefix: str = parameter(
        'raydiff/',
        'prefix of every frame the node publishes in TF, '
        "so it never fights a URDF over the cameras' own frames",
    )
    publish_tf: bool = parameter(
        True, 'publish camera transforms on TF (rig: /tf_static, temporal: /tf)'
    )
    map_frame: str = parameter('map', 'frame of relocalization seeds and of the map poses')
    map_pose_topic: str = parameter(
        '',
        'geometry_msgs/PoseStamped of a camera optical frame in '
        'map_frame while the robot is localized (empty: none)',
        read_only=True,
    )
    map_pose_camera: int = parameter(
        0,
        'index of the camera whose pose map_pose_topic gives',
        minimum=0,
        maximum=MAX_CAMERAS - 1,
    )
    map_pose_max_age_s: float = parameter(
        0.05,
        'largest stamp difference between a keyframe and the map pose attached to it',
        minimum=0.0,
        maximum=10.0,
        unit='s',
    )
    refinement: str = parameter(
        'none',
        'after the estimator: none; guided (ray_diffusion only: SIFT matches guide the last '
        'diffusion steps by their Sampson error, with the known intrinsics; plain sampling '
        'when camera_info or matches are missing); or bundle (SIFT matches + robust '
        'Sampson-error bundle adjustment with the known intrinsics; then one sample, floor '
        'covariances)',
        choices=tuple(REFINEMENTS),
        read_only=True,
    )
    calibration_enabled: bool = parameter(
        False,
        'rig mode: aggregate every view set into one set of extrinsics, publish it on '
        '/tf_static, and save it on ~/save_calibration',
    )
    calibration_output_dir: str = parameter(
        'raydiff_calibration',
        'folder ~/save_calibration writes extrinsics.yaml, rig.urdf.xacro and '
        'static_transforms.launch.py into (fixed names, never outside it)',
        read_only=True,
    )
    calibration_parent_frame: str = parameter(
        '',
        'frame the saved extrinsics are expressed in; empty: the first cameras optical frame',
    )
    schedule_period_s: float = parameter(
        0.1,
        'how often complete view sets are looked for',
        minimum=0.01,
        maximum=10.0,
        unit='s',
        read_only=True,
    )
    diagnostics_period_s: float = parameter(
        1.0,
        'period of /diagnostics',
        minimum=0.1,
        maximum=60.0,
        unit='s',
        read_only=True,
    )

    def __post_init__(self) -> None:
        check_fields(self, ValueError)
