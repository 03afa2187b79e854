"""Geometric refinement of estimated cameras: Sampson-error bundle adjustment after any
estimator (``'bundle'``, :mod:`.refined_estimator`) and Sampson guidance of the ray-diffusion
sampler (``'guided'``, :mod:`.guided_estimator`), both from the verified matches of
:mod:`raydiff_ros.features.matching`. Chosen by name through
:data:`raydiff_ros.estimation.REFINEMENTS`."""
