"""What the demo scene contains and where its cameras are: config, objects, light, cameras.

World frame: metres, ``+z`` up, the ground plane is ``z = 0``. The scene is enclosed by a
textured *sky dome*, a sphere of radius :attr:`DemoSceneConfig.dome_radius` centred at the
origin; the ground disk reaches the dome, so every camera ray hits something at a finite
distance (depth is finite everywhere, no ``inf``). A dome at finite distance is what a NeRF with
scene contraction represents best, and it gives exact ground-truth depth for the background too.

Ids (masks): ``0`` = background (dome), ``1`` = ground, ``2..`` = objects, in
:func:`demo_objects` order. Cameras follow :mod:`san.cameras` (OpenCV, ``c2w``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from san.cameras import intrinsics_matrix, look_at
from san.data.config import DemoSceneConfig

BACKGROUND_ID = 0
GROUND_ID = 1
FIRST_OBJECT_ID = 2

Shape = Literal["sphere", "box", "cylinder", "cone"]


@dataclass(frozen=True)
class DemoObject:
    """One object standing on the ground, described in its own local frame.

    The local frame is the world frame rotated by ``yaw_deg`` about ``+z`` and moved to
    ``position``. ``position`` is the centre for ``sphere`` and ``box`` and the centre of the base
    (which rests on the ground) for ``cylinder`` and ``cone``; the cone's apex is at local
    ``z = height``. ``params``: sphere ``radius``; box ``extents`` (x, y, z); cylinder and cone
    ``radius``, ``height``. Colours are linear RGB in ``[0, 1]``: the texture alternates between
    ``color`` and ``color2`` in the object's ``pattern``.
    """

    id: int
    name: str
    shape: Shape
    position: tuple[float, float, float]
    params: dict = field(default_factory=dict)
    yaw_deg: float = 0.0
    color: tuple[float, float, float] = (0.5, 0.5, 0.5)
    color2: tuple[float, float, float] = (0.3, 0.3, 0.3)
    pattern: str = "checker"

    @property
    def rotation(self) -> np.ndarray:
        """``3x3`` local-to-world rotation (yaw about ``+z``)."""
        a = math.radians(self.yaw_deg)
        c, s = math.cos(a), math.sin(a)
        return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])

    @property
    def local_to_world(self) -> np.ndarray:
        """``4x4`` local-to-world transform."""
        T = np.eye(4)
        T[:3, :3] = self.rotation
        T[:3, 3] = self.position
        return T

    def bounds(self) -> np.ndarray:
        """``2x3`` world axis-aligned bounding box ``[min, max]``."""
        p = self.params
        if self.shape == "sphere":
            r = p["radius"]
            lo, hi = np.full(3, -r), np.full(3, r)
        elif self.shape == "box":
            h = np.asarray(p["extents"], dtype=np.float64) / 2
            corners = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]) * h
            rotated = corners @ self.rotation.T
            lo, hi = rotated.min(0), rotated.max(0)
        else:
            r = p["radius"]
            lo, hi = np.array([-r, -r, 0.0]), np.array([r, r, p["height"]])
        pos = np.asarray(self.position, dtype=np.float64)
        return np.stack([pos + lo, pos + hi])

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "shape": self.shape,
            "position": list(self.position),
            "yaw_deg": self.yaw_deg,
            "params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.params.items()},
            "color": list(self.color),
            "color2": list(self.color2),
            "pattern": self.pattern,
        }


def demo_objects(config: DemoSceneConfig | None = None) -> tuple[DemoObject, ...]:
    """The demo's objects with their mask ids (``2..``). The layout is fixed (not seeded), so a
    click or a crop written for one config stays valid for another; ``config`` is accepted for
    API symmetry."""
    del config
    return (
        DemoObject(
            FIRST_OBJECT_ID,
            "sphere",
            "sphere",
            (0.9, 0.55, 0.5),
            {"radius": 0.5},
            color=(0.85, 0.18, 0.15),
            color2=(0.95, 0.75, 0.65),
            pattern="latlong_checker",
        ),
        DemoObject(
            FIRST_OBJECT_ID + 1,
            "box",
            "box",
            (-0.85, 0.7, 0.35),
            {"extents": (0.7, 0.7, 0.7)},
            yaw_deg=30.0,
            color=(0.15, 0.3, 0.85),
            color2=(0.85, 0.9, 0.95),
            pattern="face_checker",
        ),
        DemoObject(
            FIRST_OBJECT_ID + 2,
            "cylinder",
            "cylinder",
            (-0.55, -0.85, 0.0),
            {"radius": 0.35, "height": 0.9},
            color=(0.15, 0.65, 0.25),
            color2=(0.9, 0.85, 0.3),
            pattern="stripes",
        ),
        DemoObject(
            FIRST_OBJECT_ID + 3,
            "cone",
            "cone",
            (0.8, -0.8, 0.0),
            {"radius": 0.45, "height": 1.0},
            color=(0.95, 0.6, 0.1),
            color2=(0.45, 0.15, 0.55),
            pattern="spiral",
        ),
    )


def light_direction(config: DemoSceneConfig) -> np.ndarray:
    """Unit vector from a surface point towards the (directional) light."""
    az, el = math.radians(config.light_azimuth_deg), math.radians(config.light_elevation_deg)
    return np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])


def region_of_interest(config: DemoSceneConfig) -> np.ndarray:
    """``2x3`` box ``[min, max]``: the objects' bounding box grown by ``roi_margin``, from just
    below the ground (``z = -0.05``) so it contains the ground patch under and around them."""
    b = np.stack([o.bounds() for o in demo_objects(config)])
    lo, hi = b[:, 0].min(0) - config.roi_margin, b[:, 1].max(0) + config.roi_margin
    lo[2] = -0.05
    return np.stack([lo, hi])


def demo_intrinsics(config: DemoSceneConfig) -> np.ndarray:
    """``3x3`` pinhole intrinsics: horizontal ``fov_deg``, square pixels, centred principal point."""
    fx = config.width / 2 / math.tan(math.radians(config.fov_deg) / 2)
    return intrinsics_matrix(fx, fx, config.width / 2, config.height / 2)


def view_name(index: int) -> str:
    """Image file name of view ``index`` (``view_000.png``)."""
    return f"view_{index:03d}.png"


def demo_cameras(config: DemoSceneConfig) -> np.ndarray:
    """``Vx4x4`` OpenCV camera-to-world poses of the views (see :class:`DemoSceneConfig`)."""
    target = np.array([0.0, 0.0, config.target_height])
    up = np.array([0.0, 0.0, 1.0])
    poses = []
    for k in range(config.num_views):
        az = math.radians(config.azimuth_offset_deg + 360.0 * k / config.num_views)
        el = math.radians(config.elevations_deg[k % len(config.elevations_deg)])
        eye = target + config.radius * np.array(
            [math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)]
        )
        poses.append(look_at(eye, target, up))
    return np.stack(poses)
