"""raydiff_ros.demos: runnable demonstrations on top of the node (nothing below imports them).

Modules:

* ``rig_demo``: ``make demo``, a 4-camera rig bag replayed through the running estimator node;
* ``roundtrip``: ``make demo-roundtrip`` and the ``demo_talker`` / ``demo_listener``
  executables, a PoseGraph and ``/tf_static`` between two processes;
* ``bag_tools``: writing and replaying rosbag2 files without a ROS installation.

They use the node's helper modules (``raydiff_ros.ros.conversions``, ``.qos``) and, for their
plots, ``raydiff_ros.evaluation.plotting``.
"""
