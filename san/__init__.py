"""san: interactive Segment-Anything NeRF with feature imitation."""

__version__ = "0.1.0"
