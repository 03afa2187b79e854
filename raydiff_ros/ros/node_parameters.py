"""Every parameter of the estimator node: name, default, description, range or choices.

Two groups: the node's own (topics, mode, model, frames, outputs) and the pipeline's (keyframes,
view sets, scheduling, scale, covariances, relocalization, pose graph; their values build
``raydiff_ros.pipeline.config.PipelineConfig``, which also validates them as a whole).
``config/estimate.yaml`` lists every one of them with its default (a test checks both ways).
"""

from raydiff_ros.ros.parameters import ParameterSpec

NODE_PARAMETERS = (
    ParameterSpec(
        'num_cameras',
        2,
        'number of cameras; camera i is read from image_<i> and camera_info_<i> (remap them)',
        minimum=1,
        maximum=16,
        read_only=True,
    ),
    ParameterSpec(
        'image_transport',
        'raw',
        'raw: sensor_msgs/Image on image_<i>; compressed: '
        'sensor_msgs/CompressedImage on image_<i>/compressed',
        choices=('raw', 'compressed'),
        read_only=True,
    ),
    ParameterSpec(
        'image_qos',
        'sensor_data',
        'QoS of the image and camera-info subscriptions '
        '(sensor_data = best effort, as REP 2003 asks of consumers)',
        choices=('sensor_data', 'reliable'),
        read_only=True,
    ),
    ParameterSpec(
        'mode',
        'rig',
        'rig: one synchronised image per camera (calibration); '
        'temporal: the last diverse keyframes (relocalization, sparse mapping)',
        choices=('rig', 'temporal'),
    ),
    ParameterSpec(
        'estimator',
        'ray_diffusion',
        'ray_diffusion (the model), a name registered in '
        'raydiff_ros.evaluation.estimators, or python:<module>:<factory>',
        read_only=True,
    ),
    ParameterSpec(
        'model_dir',
        '',
        'model folder (config.yaml + model.safetensors); empty: '
        '$RAYDIFF_MODEL_DIR or the shipped default model',
        read_only=True,
    ),
    ParameterSpec(
        'device',
        'auto',
        'inference device: auto (CUDA when available), cpu, cuda, cuda:<n>',
        read_only=True,
    ),
    ParameterSpec(
        'dtype',
        'auto',
        'network precision: auto (bfloat16 on CUDA, float32 on CPU), float32, bfloat16, float16',
        choices=('auto', 'float32', 'bfloat16', 'float16'),
        read_only=True,
    ),
    ParameterSpec(
        'num_samples',
        8,
        'diffusion samples per view set, drawn in one batch; their spread gives the covariances',
        minimum=1,
        maximum=64,
        read_only=True,
    ),
    ParameterSpec(
        'seed',
        0,
        'seed of the diffusion noise (same input + seed = same output)',
        minimum=0,
        maximum=2**31 - 1,
        read_only=True,
    ),
    ParameterSpec(
        'frame_prefix',
        'raydiff/',
        'prefix of every frame the node publishes in TF, '
        "so it never fights a URDF over the cameras' own frames",
    ),
    ParameterSpec(
        'publish_tf', True, 'publish camera transforms on TF (rig: /tf_static, temporal: /tf)'
    ),
    ParameterSpec('map_frame', 'map', 'frame of relocalization seeds and of the map poses'),
    ParameterSpec(
        'map_pose_topic',
        '',
        'geometry_msgs/PoseStamped of a camera optical frame in '
        'map_frame while the robot is localized (empty: none)',
        read_only=True,
    ),
    ParameterSpec(
        'map_pose_camera',
        0,
        'index of the camera whose pose map_pose_topic gives',
        minimum=0,
        maximum=15,
    ),
    ParameterSpec(
        'map_pose_max_age_s',
        0.05,
        'largest stamp difference between a keyframe and the map pose attached to it',
        minimum=0.0,
        maximum=10.0,
        unit='s',
    ),
    ParameterSpec(
        'refinement',
        'none',
        'after the estimator: none; guided (ray_diffusion only: SIFT matches guide the last '
        'diffusion steps by their Sampson error, with the known intrinsics; plain sampling '
        'when camera_info or matches are missing); or bundle (SIFT matches + robust '
        'Sampson-error bundle adjustment with the known intrinsics; then one sample, floor '
        'covariances)',
        choices=('none', 'guided', 'bundle'),
        read_only=True,
    ),
    ParameterSpec(
        'calibration_enabled',
        False,
        'rig mode: aggregate every view set into one set of extrinsics, publish it on '
        '/tf_static, and save it on ~/save_calibration',
    ),
    ParameterSpec(
        'calibration_output_dir',
        'raydiff_calibration',
        'folder ~/save_calibration writes extrinsics.yaml, rig.urdf.xacro and '
        'static_transforms.launch.py into',
    ),
    ParameterSpec(
        'calibration_parent_frame',
        '',
        'frame the saved extrinsics are expressed in; empty: the first cameras optical frame',
    ),
    ParameterSpec(
        'schedule_period_s',
        0.1,
        'how often complete view sets are looked for',
        minimum=0.01,
        maximum=10.0,
        unit='s',
        read_only=True,
    ),
    ParameterSpec(
        'diagnostics_period_s',
        1.0,
        'period of /diagnostics',
        minimum=0.1,
        maximum=60.0,
        unit='s',
        read_only=True,
    ),
)

PIPELINE_PARAMETERS = (
    ParameterSpec(
        'intrinsics_source',
        'k',
        'read CameraInfo.k (raw images) or p[:3,:3] (rectified images)',
        choices=('k', 'p'),
    ),
    ParameterSpec(
        'aspect_ratio_tolerance',
        0.01,
        'largest relative aspect-ratio difference between image and CameraInfo '
        'before refusing (a crop cannot be fixed by scaling)',
        minimum=0.0,
        maximum=1.0,
    ),
    ParameterSpec(
        'keyframe_min_interval_s',
        1.0,
        'keep a frame when this long since the cameras last keyframe',
        minimum=0.0,
    ),
    ParameterSpec(
        'keyframe_min_change',
        0.05,
        'keep a frame when the thumbnail distance to the last keyframe reaches this '
        '(mean abs. difference of mean-removed grey thumbnails in [0, 1])',
        minimum=0.0,
        maximum=1.0,
    ),
    ParameterSpec(
        'blur_min_laplacian_variance',
        20.0,
        'reject frames whose Laplacian variance (grey levels^2 at '
        'analysis_max_side) is below; 0 disables',
        minimum=0.0,
    ),
    ParameterSpec(
        'analysis_max_side',
        320,
        'longer side (px) of the image the sharpness and thumbnail are computed on',
        minimum=16,
    ),
    ParameterSpec('thumbnail_size', 32, 'side (px) of the grey thumbnail', minimum=4),
    ParameterSpec('max_keyframes_per_camera', 30, 'ring-buffer capacity per camera', minimum=1),
    ParameterSpec(
        'stored_image_max_side',
        256,
        'longer side (px) of stored keyframe images (never upscaled)',
        minimum=16,
    ),
    ParameterSpec(
        'clock_jump_reset_s',
        1.0,
        'a stamp this much older than the last keyframe clears the camera (bag loop)',
        minimum=0.0,
    ),
    ParameterSpec(
        'sync_slop_s', 0.02, 'rig mode: largest stamp spread (max - min) in a set', minimum=0.0
    ),
    ParameterSpec('max_views', 8, 'largest view-set size', minimum=2, maximum=8),
    ParameterSpec(
        'temporal_window_s',
        30.0,
        'temporal mode: candidates at most this much older than the newest keyframe',
        minimum=0.0,
    ),
    ParameterSpec(
        'temporal_time_weight',
        0.01,
        'temporal mode: thumbnail-distance units per second apart in the diversity distance',
        minimum=0.0,
    ),
    ParameterSpec(
        'relocalization_min_known_poses',
        3,
        'fewest stored keyframes with map poses per relocalization set',
        minimum=2,
        maximum=7,
    ),
    ParameterSpec(
        'relocalization_min_separation_m',
        0.05,
        'smallest map distance between two chosen stored keyframes',
        minimum=0.0,
    ),
    ParameterSpec(
        'relocalization_max_appearance_distance',
        1.0,
        'largest thumbnail distance from the query of a chosen stored keyframe (1: any)',
        minimum=0.0,
        maximum=1.0,
    ),
    ParameterSpec(
        'max_pending_view_sets', 2, 'queue length; a full queue drops its oldest set', minimum=1
    ),
    ParameterSpec(
        'stop_timeout_s', 10.0, 'how long stop waits for a running inference', minimum=0.0
    ),
    ParameterSpec(
        'scale_source',
        'none',
        'none: distance views 0-1 = 1 (not metric); known_baseline: metric from '
        'a known camera distance (rig sets only, else falls back to none)',
        choices=('none', 'known_baseline'),
    ),
    ParameterSpec('baseline_camera_a', 0, 'one end of the known baseline'),
    ParameterSpec('baseline_camera_b', 1, 'the other end'),
    ParameterSpec(
        'baseline_m', 0.0, 'the known distance between the two camera centres, metres', minimum=0.0
    ),
    ParameterSpec(
        'min_baseline_fraction',
        0.001,
        'a baseline shorter than this fraction of the sets extent is degenerate',
        minimum=0.0,
        maximum=1.0,
    ),
    ParameterSpec(
        'translation_variance_floor',
        0.0001,
        'smallest x/y/z variance (units^2; (1 cm)^2 when metric)',
        minimum=0.0,
    ),
    ParameterSpec(
        'rotation_variance_floor',
        0.0003,
        'smallest rx/ry/rz variance, rad^2 (about (1 deg)^2)',
        minimum=0.0,
    ),
    ParameterSpec('covariance_scale', 1.0, 'factor on the sample covariance', minimum=0.0),
    ParameterSpec(
        'unknown_scale_relative_std',
        0.5,
        'relative std of the scale when not metric: adds std^2 t t^T to the translation block',
        minimum=0.0,
    ),
    ParameterSpec(
        'relocalization_min_map_extent_m',
        0.05,
        'stored map positions must span at least this',
        minimum=0.0,
    ),
    ParameterSpec(
        'relocalization_collinearity_ratio',
        0.05,
        'stored positions with 2nd/1st singular value below this are collinear: '
        'rotation about the line from orientations',
        minimum=0.0,
        maximum=1.0,
    ),
    ParameterSpec(
        'relocalization_max_relative_residual',
        0.5,
        'refuse when the RMS position residual exceeds this fraction of the '
        'stored positions RMS spread',
        minimum=0.0,
    ),
    ParameterSpec(
        'relocalization_max_rotation_residual_deg',
        30.0,
        'refuse when the RMS orientation residual exceeds this',
        minimum=0.0,
        maximum=180.0,
    ),
    ParameterSpec(
        'relocalization_translation_variance_floor',
        0.01,
        'smallest x/y/z variance of the seed, m^2 ((10 cm)^2)',
        minimum=0.0,
    ),
    ParameterSpec(
        'relocalization_rotation_variance_floor',
        0.0025,
        'smallest rx/ry/rz variance of the seed, rad^2 (about (2.9 deg)^2)',
        minimum=0.0,
    ),
    ParameterSpec(
        'relocalization_covariance_scale',
        1.0,
        'factor on the seeds sample covariance',
        minimum=0.0,
    ),
    ParameterSpec(
        'pose_graph_key_mode',
        'stamp_ns',
        'node key: stamp in ns (Hydra) or keyframe running index (Kimera-PGMO)',
        choices=('stamp_ns', 'index'),
    ),
    ParameterSpec(
        'pose_graph_edges',
        'star',
        'reference-to-each edges, or every pair (correlated)',
        choices=('star', 'all_pairs'),
    ),
    ParameterSpec('robot_id_offset', 0, 'robot_id = offset + camera index', minimum=0),
)

ALL_PARAMETERS = NODE_PARAMETERS + PIPELINE_PARAMETERS
