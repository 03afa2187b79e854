"""raydiff_ros.evaluation."""
