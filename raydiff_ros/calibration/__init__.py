"""Rig calibration: aggregate view-set estimates into extrinsics and export them."""
