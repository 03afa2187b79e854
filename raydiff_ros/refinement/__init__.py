"""Geometric refinement of estimated cameras: verified SIFT matches, Sampson-error bundle
adjustment, and Sampson guidance of the ray-diffusion sampler (issue 7; see ``selection``)."""
