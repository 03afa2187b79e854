"""The ROS 2 adapter layer of raydiff_ros (imports rclpy and message packages)."""
