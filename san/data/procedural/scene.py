"""The procedural scene family: seeded random scenes that generalise the demo scene.

A scene (:func:`sample_scene`) has 2-8 objects standing on a ground disk inside a sky dome,
one directional light and ``num_views`` cameras. Every object is one primitive or the union of
two (both parts carry the object's mask id), from :data:`SHAPES`, with random size, pose
(upright, tilted or lying, any yaw), two colours and a texture from :data:`PATTERNS`.
Objects may occlude each other (they are placed in a disk with only mild spacing); each camera
has its own radius, elevation, azimuth, field of view and aim jitter. Frames and ids follow
:mod:`san.data.demo.layout`: metres, ``+z`` up, ground ``z = 0``, OpenCV ``c2w``; mask id ``0``
sky, ``1`` ground, ``2..`` objects.

Seeds. ``sample_scene(seed)`` is a pure function of ``seed`` (``numpy.random.default_rng``).
:data:`HELD_OUT_SEEDS` are reserved for evaluation: :func:`training_seeds` never returns them
and :func:`sample_scene` refuses them unless ``held_out=True``.

What the family never contains (so the demo scene stays unseen in training): the demo's
texture patterns (``latlong_checker``, ``face_checker``, banded ``stripes``, ``spiral``), its
fixed ground colours and its fixed sky palette; see :func:`demo_settings_excluded`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from san.cameras import intrinsics_matrix, look_at
from san.data.demo.layout import FIRST_OBJECT_ID
from san.data.demo.render import GROUND_COLORS as DEMO_GROUND_COLORS

SHAPES = ("sphere", "box", "cylinder", "cone", "torus", "capsule")
PATTERNS = ("solid", "stripes", "checker", "noise", "two_tone")
DEMO_PATTERNS = ("latlong_checker", "face_checker", "stripes_band", "spiral")
GROUND_PATTERNS = ("checker", "solid", "stripes", "noise")

HELD_OUT_SEEDS: tuple[int, ...] = tuple(range(1_000_000, 1_000_000 + 100))
"""Scene seeds never trained on (evaluation only)."""

TEXTURE_SEED_OFFSET = 7_919  # texture-noise seed = scene seed + this (the demo's noise uses seed 0)


@dataclass(frozen=True)
class Primitive:
    """One analytic surface of an object.

    ``rotation`` (``3x3``) and ``position`` (``3``) map the primitive's local frame (see
    :mod:`san.data.demo.geometry` and :mod:`san.data.procedural.geometry`) to the world.
    ``params``: sphere ``radius``; box ``extents``; cylinder / cone ``radius``, ``height`` (base at
    local ``z = 0``); torus ``major``, ``minor``; capsule ``radius``, ``length``.
    """

    shape: str
    params: dict
    rotation: np.ndarray
    position: np.ndarray

    def bounding_sphere(self) -> tuple[np.ndarray, float]:
        """World ``(centre, radius)`` enclosing the primitive."""
        p = self.params
        if self.shape == "sphere":
            c, r = np.zeros(3), p["radius"]
        elif self.shape == "box":
            c, r = np.zeros(3), float(np.linalg.norm(np.asarray(p["extents"]) / 2))
        elif self.shape in ("cylinder", "cone"):
            c, r = np.array([0.0, 0.0, p["height"] / 2]), math.hypot(p["radius"], p["height"] / 2)
        elif self.shape == "torus":
            c, r = np.zeros(3), p["major"] + p["minor"]
        elif self.shape == "capsule":
            c, r = np.zeros(3), p["radius"] + p["length"] / 2
        else:
            raise ValueError(f"unknown shape {self.shape!r}")
        return self.rotation @ c + self.position, float(r)

    def lowest_z(self) -> float:
        """Exact world ``z`` of the primitive's lowest point."""
        R, pos, p = self.rotation, self.position, self.params
        axis = R[:, 2]
        spread = math.sqrt(max(0.0, 1.0 - axis[2] ** 2))  # z-extent of a unit circle about ``axis``
        if self.shape == "sphere":
            low = -p["radius"]
        elif self.shape == "box":
            low = -float(np.abs(R[2]) @ (np.asarray(p["extents"]) / 2))
        elif self.shape == "cylinder":
            low = min(0.0, p["height"] * axis[2]) - p["radius"] * spread
        elif self.shape == "cone":
            low = min(-p["radius"] * spread, p["height"] * axis[2])
        elif self.shape == "torus":
            low = -p["major"] * spread - p["minor"]
        else:  # capsule
            low = -abs(axis[2]) * p["length"] / 2 - p["radius"]
        return float(pos[2] + low)


@dataclass(frozen=True)
class ProceduralObject:
    """An object: its mask ``id``, one or two :class:`Primitive` parts, colours and texture.

    ``pattern`` in :data:`PATTERNS`; ``pattern_params``: ``period`` (metres), ``axis`` (unit 3-vector,
    stripes / two-tone), ``offset`` (two-tone split), ``frequency`` (noise).
    """

    id: int
    name: str
    parts: tuple[Primitive, ...]
    color: tuple[float, float, float]
    color2: tuple[float, float, float]
    pattern: str
    pattern_params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Environment:
    """Ground, sky and light of a scene."""

    dome_radius: float
    ground_pattern: str
    ground_colors: tuple[tuple[float, float, float], tuple[float, float, float]]
    ground_period: float
    sky_zenith: tuple[float, float, float]
    sky_horizon: tuple[float, float, float]
    clouds: float  # 0..1 cloud cover strength
    hills: bool
    hill_colors: tuple[tuple[float, float, float], tuple[float, float, float]]
    hill_height: float  # radians above the horizon
    light_direction: tuple[float, float, float]  # unit, towards the light
    ambient: float


@dataclass(frozen=True)
class ProceduralScene:
    """A sampled scene: objects, environment, cameras (``Vx4x4`` c2w, ``Vx3x3`` K, sizes)."""

    seed: int
    objects: tuple[ProceduralObject, ...]
    env: Environment
    c2w: np.ndarray
    K: np.ndarray
    width: int
    height: int
    texture_seed: int

    @property
    def num_views(self) -> int:
        return len(self.c2w)


def _rot_z(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _rot_x(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _hsv(h: float, s: float, v: float) -> tuple[float, float, float]:
    import colorsys

    return tuple(float(x) for x in colorsys.hsv_to_rgb(h % 1.0, s, v))


def _random_color(rng: np.random.Generator) -> tuple[float, float, float]:
    return _hsv(rng.uniform(), rng.uniform(0.05, 0.95), rng.uniform(0.2, 0.98))


def _unit(rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=3)
    return v / np.linalg.norm(v)


def _shape_params(shape: str, size: float, rng: np.random.Generator) -> dict:
    """Parameters of ``shape`` with characteristic size ``size`` (metres, about its half-extent)."""
    if shape == "sphere":
        return {"radius": size}
    if shape == "box":
        return {"extents": tuple(float(x) for x in 2 * size * rng.uniform(0.45, 1.0, 3))}
    if shape in ("cylinder", "cone"):
        return {"radius": size * rng.uniform(0.45, 0.9), "height": 2 * size * rng.uniform(0.6, 1.4)}
    if shape == "torus":
        major = size * rng.uniform(0.65, 0.85)
        return {"major": major, "minor": major * rng.uniform(0.2, 0.45)}
    if shape == "capsule":
        r = size * rng.uniform(0.3, 0.55)
        return {"radius": r, "length": 2 * size * rng.uniform(0.5, 1.2)}
    raise ValueError(shape)


def _orientation(shape: str, rng: np.random.Generator) -> np.ndarray:
    """Local-to-world rotation: any yaw; upright, tilted or lying depending on the shape."""
    yaw = _rot_z(rng.uniform(0, 2 * math.pi))
    if shape == "sphere":
        return yaw
    u = rng.uniform()
    if shape in ("cylinder", "capsule", "torus") and u < 0.35:
        tilt = math.pi / 2  # lying on its side / torus standing on its rim
    elif u < 0.55:
        tilt = rng.uniform(-0.5, 0.5)
    else:
        tilt = 0.0
    return yaw @ _rot_x(tilt)


def _sample_object(oid: int, rng: np.random.Generator) -> ProceduralObject:
    size = float(rng.uniform(0.18, 0.6))
    shape = SHAPES[rng.integers(len(SHAPES))]
    R = _orientation(shape, rng)
    parts = [Primitive(shape, _shape_params(shape, size, rng), R, np.zeros(3))]
    name = shape
    if rng.uniform() < 0.3:  # union of two: a second part overlapping the first
        shape2 = SHAPES[rng.integers(len(SHAPES))]
        size2 = size * float(rng.uniform(0.45, 0.9))
        centre, radius = parts[0].bounding_sphere()
        direction = _unit(rng)
        direction[2] = abs(direction[2]) + 0.3
        direction /= np.linalg.norm(direction)
        offset = centre + direction * radius * rng.uniform(0.45, 0.85)
        R2 = _orientation(shape2, rng)
        p2 = Primitive(shape2, _shape_params(shape2, size2, rng), R2, np.zeros(3))
        c2, _ = p2.bounding_sphere()
        parts.append(Primitive(shape2, p2.params, R2, offset - c2))
        name = f"{shape}+{shape2}"
    pattern = PATTERNS[rng.integers(len(PATTERNS))]
    color, color2 = _random_color(rng), _random_color(rng)
    pattern_params = {
        "period": float(size * rng.uniform(0.25, 0.8)),
        "axis": tuple(float(x) for x in _unit(rng)),
        "offset": float(rng.uniform(-0.3, 0.3) * size),
        "frequency": float(rng.uniform(2.0, 8.0) / size),
    }
    return ProceduralObject(oid, name, tuple(parts), color, color2, pattern, pattern_params)


def _place(obj: ProceduralObject, xy: np.ndarray) -> ProceduralObject:
    """Move ``obj`` so it rests on the ground (lowest point at ``z = 0``) above ``xy``."""
    low = min(p.lowest_z() for p in obj.parts)
    shift = np.array([xy[0], xy[1], -low])
    parts = tuple(Primitive(p.shape, p.params, p.rotation, p.position + shift) for p in obj.parts)
    return ProceduralObject(obj.id, obj.name, parts, obj.color, obj.color2, obj.pattern, obj.pattern_params)


def _footprint(obj: ProceduralObject) -> float:
    return max(
        float(np.linalg.norm(c[:2] - obj.parts[0].position[:2])) + r
        for c, r in (p.bounding_sphere() for p in obj.parts)
    )


def _environment(rng: np.random.Generator) -> Environment:
    dome = float(rng.uniform(9.0, 16.0))
    g0 = _hsv(rng.uniform(), rng.uniform(0.0, 0.6), rng.uniform(0.25, 0.8))
    g1 = (
        tuple(float(np.clip(c * rng.uniform(0.4, 0.8), 0, 1)) for c in g0)
        if rng.uniform() < 0.6
        else _random_color(rng)
    )
    sky_h = rng.uniform(0.5, 0.7) if rng.uniform() < 0.7 else rng.uniform()
    zenith = _hsv(sky_h, rng.uniform(0.2, 0.8), rng.uniform(0.45, 0.95))
    horizon = _hsv(sky_h + rng.uniform(-0.08, 0.08), rng.uniform(0.0, 0.3), rng.uniform(0.7, 1.0))
    az, el = rng.uniform(0, 2 * math.pi), rng.uniform(math.radians(25), math.radians(80))
    light = (math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el))
    return Environment(
        dome_radius=dome,
        ground_pattern=GROUND_PATTERNS[rng.integers(len(GROUND_PATTERNS))],
        ground_colors=(g0, g1),
        ground_period=float(rng.uniform(0.2, 1.2)),
        sky_zenith=zenith,
        sky_horizon=horizon,
        clouds=float(rng.uniform(0.0, 1.0)),
        hills=bool(rng.uniform() < 0.7),
        hill_colors=(_random_color(rng), _random_color(rng)),
        hill_height=float(rng.uniform(0.03, 0.2)),
        light_direction=light,
        ambient=float(rng.uniform(0.2, 0.55)),
    )


def _cameras(rng: np.random.Generator, num_views: int, width: int, height: int, spread: float, dome: float):
    c2w, Ks = [], []
    for _ in range(num_views):
        fov = math.radians(rng.uniform(35.0, 70.0))
        # distance so that the objects' spread fills a good part of the view
        radius = float(np.clip(spread / math.tan(fov / 2) * rng.uniform(0.55, 1.15), 1.5, dome * 0.6))
        el = math.radians(rng.uniform(6.0, 65.0))
        az = rng.uniform(0, 2 * math.pi)
        target = np.array([*(rng.normal(size=2) * 0.25 * spread), rng.uniform(0.1, 0.6)])
        eye = target + radius * np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
        c2w.append(look_at(eye, target, np.array([0.0, 0.0, 1.0])))
        fx = width / 2 / math.tan(fov / 2)
        Ks.append(intrinsics_matrix(fx, fx, width / 2, height / 2))
    return np.stack(c2w), np.stack(Ks)


def sample_scene(
    seed: int,
    num_views: int = 4,
    width: int = 192,
    height: int = 192,
    held_out: bool = False,
) -> ProceduralScene:
    """The scene of ``seed`` with ``num_views`` random cameras of ``width x height`` pixels.

    Deterministic: the same arguments give the same scene on every machine.

    Raises:
        ValueError: ``seed`` is in :data:`HELD_OUT_SEEDS` and ``held_out`` is false, or is not in
            it and ``held_out`` is true (evaluation must only use held-out seeds).
    """
    if (seed in HELD_OUT_SEEDS) != held_out:
        which = "a held-out seed; pass held_out=True for evaluation" if held_out is False else "not a held-out seed"
        raise ValueError(f"procedural scene seed {seed} is {which}")
    rng = np.random.default_rng([seed, 20261130])
    n = int(rng.integers(2, 9))
    objects: list[ProceduralObject] = []
    placed: list[tuple[np.ndarray, float]] = []
    area = float(rng.uniform(1.0, 2.0))  # placement disk radius (metres)
    for k in range(n):
        obj = _sample_object(FIRST_OBJECT_ID + k, rng)
        foot = _footprint(obj)
        for _attempt in range(30):
            r, a = area * math.sqrt(rng.uniform()), rng.uniform(0, 2 * math.pi)
            xy = np.array([r * math.cos(a), r * math.sin(a)])
            # mild spacing: footprints may touch (occlusion from most views) but barely overlap
            if all(np.linalg.norm(xy - q) > 0.8 * (foot + f) for q, f in placed):
                break
        else:
            continue
        placed.append((xy, foot))
        objects.append(_place(obj, xy))
    objects = [
        ProceduralObject(FIRST_OBJECT_ID + i, o.name, o.parts, o.color, o.color2, o.pattern, o.pattern_params)
        for i, o in enumerate(objects)
    ]
    env = _environment(rng)
    spread = area + 0.5
    c2w, K = _cameras(rng, num_views, width, height, spread, env.dome_radius)
    return ProceduralScene(seed, tuple(objects), env, c2w, K, width, height, seed + TEXTURE_SEED_OFFSET)


def training_seeds(count: int, start: int = 0) -> list[int]:
    """``count`` scene seeds for training, counting up from ``start`` and skipping
    :data:`HELD_OUT_SEEDS`."""
    held = set(HELD_OUT_SEEDS)
    out, s = [], start
    while len(out) < count:
        if s not in held:
            out.append(s)
        s += 1
    return out


def demo_settings_excluded(scene: ProceduralScene) -> bool:
    """``True`` when ``scene`` uses none of the demo scene's generator settings: its texture
    patterns, its ground colours, its texture-noise seed 0."""
    return (
        all(o.pattern not in DEMO_PATTERNS for o in scene.objects)
        and tuple(tuple(c) for c in scene.env.ground_colors) != tuple(DEMO_GROUND_COLORS)
        and scene.texture_seed != 0
    )
