"""Models: the scene NeRF (sampler + fields + renderer) and its file format."""

from san.models.nerf import NeRFConfig, NeRFModel, RenderOutput, load_nerf, save_nerf

__all__ = ["NeRFConfig", "NeRFModel", "RenderOutput", "load_nerf", "save_nerf"]
