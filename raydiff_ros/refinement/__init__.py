"""Geometric refinement of estimated cameras: verified SIFT matches and Sampson-error
bundle adjustment (issue 7)."""
