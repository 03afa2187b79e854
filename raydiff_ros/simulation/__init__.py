"""raydiff_ros.simulation: exact synthetic multi-camera scenes for demos, tests and benchmarks."""
