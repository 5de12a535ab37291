"""Generators: global-affine (SPADE), local class-specific (LGGAN) and their weight-map fusion."""

from .fusion import WeightMapPredictor, fuse_images
from .global_affine import GlobalAffineGenerator, SPADEResBlock
from .local_specific import LocalClassGenerator, LocalOutput, class_conv, present_classes

__all__ = ["GlobalAffineGenerator", "LocalClassGenerator", "LocalOutput", "SPADEResBlock",
           "WeightMapPredictor", "class_conv", "fuse_images", "present_classes"]
