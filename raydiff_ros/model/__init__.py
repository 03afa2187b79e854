"""raydiff_ros.model."""
