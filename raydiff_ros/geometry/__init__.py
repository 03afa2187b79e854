"""raydiff_ros.geometry."""
