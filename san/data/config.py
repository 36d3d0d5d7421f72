"""Configuration of scene preparation (:mod:`san.data.prepare`) and of the demo scene
(:mod:`san.data.demo`).

Imports no torch, trimesh or h5py: every Snakemake parse reads these classes
(``san.pipeline.settings``).
"""

from __future__ import annotations

from dataclasses import dataclass

from san.config import ConfigError


@dataclass(frozen=True)
class PreparePosesConfig:
    """Options of rule ``prepare_poses`` (config section ``poses``).

    Attributes:
        test_every: every ``test_every``-th frame (by image name, starting at 0) is held out
            (at least 1). Not used for Blender, which has its own test file (see the module docstring).
        background: ``(r, g, b)`` in ``[0, 1]`` that RGBA images are composited on.
        image_folder: image folder relative to the scene (``"images_8"``); ``None``: ``images`` if
            present, else the ``images_N`` with the smallest ``N``. For transforms files it replaces
            a leading ``images/`` in ``file_path``.
        unbounded_near: near bound of unbounded scenes, normalised units (cameras within distance 1).
        unbounded_far: far bound of unbounded scenes, normalised units.
        forward_facing_max_angle: degrees; LLFF/COLMAP scenes whose cameras all look within this angle
            of the mean viewing direction are ``forward_facing``.
    """

    test_every: int = 8
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    image_folder: str | None = None
    unbounded_near: float = 0.05
    unbounded_far: float = 1000.0
    forward_facing_max_angle: float = 45.0

    def __post_init__(self):
        if self.test_every < 1:
            raise ConfigError(
                f"poses.test_every: must be >= 1 (every scene needs held-out views for its test PSNR and "
                f"evaluation), got {self.test_every}"
            )
        if len(self.background) != 3 or not all(0.0 <= float(c) <= 1.0 for c in self.background):
            raise ConfigError(f"poses.background: expected 3 values in [0, 1], got {self.background!r}")
        if not 0.0 < self.unbounded_near < self.unbounded_far:
            raise ConfigError(
                "poses.unbounded_near/unbounded_far: need 0 < near < far, "
                f"got {self.unbounded_near}, {self.unbounded_far}"
            )
        if not 0.0 < self.forward_facing_max_angle < 180.0:
            raise ConfigError(
                f"poses.forward_facing_max_angle: must be in (0, 180), got {self.forward_facing_max_angle}"
            )


@dataclass(frozen=True)
class DemoSceneConfig:
    """Everything that determines the demo scene's pixels (same config -> same bytes).

    Cameras: view ``k`` sits at azimuth ``azimuth_offset_deg + 360 k / num_views`` and elevation
    ``elevations_deg[k % len(elevations_deg)]`` (consecutive views alternate between the rings),
    at distance ``radius`` from ``(0, 0, target_height)``, which it looks at with world ``+z`` up.
    """

    num_views: int = 48
    width: int = 192
    height: int = 192
    seed: int = 0  # seeds the procedural noise in every texture
    elevations_deg: tuple[float, ...] = (20.0, 40.0)
    radius: float = 4.0
    fov_deg: float = 50.0  # horizontal field of view; square pixels (fy = fx)
    azimuth_offset_deg: float = 0.0
    target_height: float = 0.4
    dome_radius: float = 12.0
    ground_checker: float = 0.5  # ground checker square size (metres)
    light_azimuth_deg: float = 35.0
    light_elevation_deg: float = 55.0
    ambient: float = 0.35  # shade = albedo * (ambient + (1 - ambient) * max(n.l, 0) * lit)
    shadows: bool = True
    supersample: int = 2  # s x s sub-pixel rays averaged for RGB; depth / ids use the pixel centre
    roi_margin: float = 0.5  # region of interest = objects' bounding box grown by this (metres)
    mesh_subdivisions: int = 5  # icosphere level for the sphere mesh
    mesh_sections: int = 256  # polygon sections of cylinder / cone / ground meshes

    def __post_init__(self) -> None:
        where = "demo_scene"
        for name in ("num_views", "width", "height", "supersample", "mesh_subdivisions"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{where}.{name}: must be >= 1, got {getattr(self, name)}")
        if self.mesh_sections < 3:
            raise ConfigError(f"{where}.mesh_sections: must be >= 3, got {self.mesh_sections}")
        if not self.elevations_deg or not all(0 < e < 90 for e in self.elevations_deg):
            raise ConfigError(
                f"{where}.elevations_deg: one or more rings, each in (0, 90) degrees, got {list(self.elevations_deg)}"
            )
        if not 0 < self.fov_deg < 180:
            raise ConfigError(f"{where}.fov_deg: must be in (0, 180), got {self.fov_deg}")
        if not 0 < self.radius < self.dome_radius - abs(self.target_height):
            raise ConfigError(
                f"{where}.radius: cameras must be inside the dome (dome_radius {self.dome_radius}), got {self.radius}"
            )
        if not 0 <= self.ambient <= 1:
            raise ConfigError(f"{where}.ambient: must be in [0, 1], got {self.ambient}")
