"""raydiff_ros.pipeline: the ROS-free core of the estimator node.

Data flow (the ROS node is a thin adapter that passes plain message values in and converts
the dataclasses out):

1. ``image_decoding``: Image / CompressedImage fields -> (H, W, 3) uint8 RGB.
2. ``camera_info``: CameraInfo fields -> validated ``PinholeIntrinsics`` (rescaled to the
   image size).
3. ``keyframes``: per-camera keyframe selection (time / view change, blur rejection) into
   bounded ring buffers.
4. ``view_sets``: rig, temporal and relocalization view sets of 2 to 8 keyframes.
5. ``scheduler``: a bounded queue and worker thread running the estimator (drops the oldest
   pending set under load; survives estimator exceptions; rejects non-finite results).
6. ``poses``, ``scale``, ``uncertainty``, ``relocalization``, ``estimates``: from pose samples
   to scaled mean poses with 6x6 covariances (ROS order x, y, z, rx, ry, rz), and map poses of
   lost keyframes.
7. ``pose_graph``: nodes and ``from_T_to`` edges for ``msg/PoseGraph``.

Nothing here imports ROS.
"""
