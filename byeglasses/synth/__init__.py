"""Training-pair synthesis: realistic eyeglasses drawn onto glasses-free faces, with exact masks."""

from .glasses import FRAME_FAMILIES, LENS_SHAPES, LENS_TYPES, GlassesDistribution, GlassesParams
from .render import SynthSample, synthesize

__all__ = ["FRAME_FAMILIES", "LENS_SHAPES", "LENS_TYPES", "GlassesDistribution", "GlassesParams",
           "SynthSample", "synthesize"]
