"""The learned prior fused with verified geometry: the ``fused`` and ``matches`` estimators.

``view_graph``: which pairs to match, their verified two-view geometry, cycle consistency;
``estimator``: the fusion itself and the registry factories.
"""
