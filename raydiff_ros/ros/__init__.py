"""raydiff_ros.ros."""
