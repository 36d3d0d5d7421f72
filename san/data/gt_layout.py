"""The ground-truth layout of a segmentation benchmark: per-view object masks plus a prompts file.

One folder per scene (scene sheet column ``benchmark``; the demo scene writes its own under
``scene/benchmark/``)::

    prompts.json                 tasks, prompts, targets (below)
    masks/{task}/{view}.png      one per annotated view: uint8 (or 1-bit), any nonzero pixel = object
    meshes/{task}.ply            optional: the object's ground-truth surface (capture's input frame)
    meshes/{name}.ply            optional: other surfaces that hide objects (``occluders``)

``prompts.json``::

    {"format_version": 1,
     "name": "demo", "source": "where the masks come from",
     "occluders": ["meshes/ground.ply"],          # optional
     "surface_distance": 0.053,                   # optional, scene units of the meshes' frame
     "tasks": [{"task": "sphere",                 # [A-Za-z0-9_-]+
                "reference_view": "view_001",     # image file stem of a frame in poses/cameras.json
                "reference_size": [192, 192],     # W, H of the image the prompts are given in
                "points": [[133.5, 110.5]],       # (x, y) pixels, pixel (0, 0)'s centre at (0.5, 0.5)
                "labels": [1],                    # 1 positive, 0 negative
                "box": null,                      # or [x0, y0, x1, y1] pixels
                "targets": ["view_000", "view_008"],
                "mesh": "meshes/sphere.ply",      # optional
                "prompt_rule": "how the points were made"}]}

A view is named by the stem of its image file (``images/view_001.png`` -> ``view_001``), the same
name in ``poses/cameras.json``. Every target needs ``masks/{task}/{view}.png``; the reference
view's mask is optional (drawn in figures when present). A mask's size is the *annotation
resolution* of its view; it must have the view's aspect ratio (checked against the camera by the
harness, :mod:`san.benchmark`).

Deterministic prompt rules (:func:`scribble_to_points`, :func:`mask_to_click`) turn the scribbles
and masks benchmarks ship into points; the README gives the conversion of NVOS and SPIn-NeRF
folders (``scripts/convert_benchmark.py``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from san.utils.io import atomic_folder

FORMAT_VERSION = 1
PROMPTS_FILE = "prompts.json"
TASK_NAME = re.compile(r"^[A-Za-z0-9_\-]+$")


class LayoutError(ValueError):
    """A benchmark folder that does not follow the layout; the message names the file."""


@dataclass(frozen=True)
class BenchmarkTask:
    """One object to segment: prompts in a reference view, ground truth in target views.

    Attributes:
        task: the task's name (``[A-Za-z0-9_-]+``; the folder of its masks).
        reference_view: image stem of the view the prompts are given in.
        reference_size: ``(W, H)`` pixels of the image the prompts refer to.
        points: ``Nx2`` float ``(x, y)`` pixels (pixel centres at ``+0.5``); may be empty with a box.
        labels: ``N`` int, 1 positive / 0 negative.
        box: ``(x0, y0, x1, y1)`` pixels or ``None``.
        targets: image stems of the scored views (the reference view is not among them).
        mesh: path of the object's ground-truth surface, relative to the layout folder, or ``None``.
        prompt_rule: how the prompts were made (free text, recorded in every result).
    """

    task: str
    reference_view: str
    reference_size: tuple[int, int]
    points: np.ndarray
    labels: np.ndarray
    box: tuple[float, float, float, float] | None
    targets: tuple[str, ...]
    mesh: str | None = None
    prompt_rule: str = ""

    def to_json(self) -> dict:
        return {
            "task": self.task,
            "reference_view": self.reference_view,
            "reference_size": [int(v) for v in self.reference_size],
            "points": [[float(x), float(y)] for x, y in np.asarray(self.points, dtype=float).reshape(-1, 2)],
            "labels": [int(v) for v in np.asarray(self.labels).reshape(-1)],
            "box": None if self.box is None else [float(v) for v in self.box],
            "targets": list(self.targets),
            "mesh": self.mesh,
            "prompt_rule": self.prompt_rule,
        }


@dataclass(frozen=True)
class BenchmarkLayout:
    """A read benchmark folder (module docstring). ``root`` is the folder."""

    root: Path
    name: str
    source: str
    tasks: tuple[BenchmarkTask, ...]
    occluders: tuple[str, ...] = ()
    surface_distance: float | None = None
    extra: dict = field(default_factory=dict, repr=False)

    def mask_path(self, task: str, view: str) -> Path:
        return self.root / "masks" / task / f"{view}.png"

    def has_mask(self, task: str, view: str) -> bool:
        return self.mask_path(task, view).is_file()

    def read_mask(self, task: str, view: str) -> np.ndarray:
        """``HxW`` bool ground truth of ``task`` in ``view`` (any nonzero pixel is the object)."""
        return read_mask(self.mask_path(task, view))

    def views(self) -> list[str]:
        """Every view a task refers to (reference or target), sorted."""
        return sorted({t.reference_view for t in self.tasks} | {v for t in self.tasks for v in t.targets})

    def check_views(self, available: Sequence[str]) -> None:
        """Raise :class:`LayoutError` naming every view of the layout that is not in ``available``
        (the image stems of the scene's ``cameras.json``)."""
        have = set(available)
        missing = [f"{t.task}: {v}" for t in self.tasks for v in (t.reference_view, *t.targets) if v not in have]
        if missing:
            raise LayoutError(
                f"{self.root / PROMPTS_FILE}: {len(missing)} view(s) are not frames of the scene "
                f"(views are image file stems, e.g. {sorted(have)[:3]}): " + ", ".join(missing[:10])
            )


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """A ground-truth mask PNG -> ``HxW`` bool (nonzero in any channel = object)."""
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise LayoutError(f"{path}: ground-truth mask not found")
    with Image.open(path) as im:
        a = np.asarray(im)
    if a.ndim == 3:
        a = a[..., :3].max(axis=-1) if a.shape[-1] >= 3 else a[..., 0]
    if a.ndim != 2:
        raise LayoutError(f"{path}: a mask must be a single image, got shape {a.shape}")
    return a > 0


def write_mask(path: str | os.PathLike, mask: np.ndarray) -> None:
    from PIL import Image

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.where(np.asarray(mask, dtype=bool), 255, 0).astype(np.uint8)).save(path, format="PNG")


def _task_from_json(entry: Mapping, where: str) -> BenchmarkTask:
    problems = []
    for key in ("task", "reference_view", "reference_size", "targets"):
        if key not in entry:
            problems.append(f"missing key {key!r}")
    if problems:
        raise LayoutError(f"{where}: " + "; ".join(problems))
    name = str(entry["task"])
    if not TASK_NAME.match(name):
        problems.append(f"task name {name!r} must match [A-Za-z0-9_-]+")
    size = entry["reference_size"]
    if not (isinstance(size, (list, tuple)) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
        problems.append(f"reference_size {size!r} must be [W, H], positive integers")
        size = (1, 1)
    points = (
        np.asarray(entry.get("points", []), dtype=np.float64).reshape(-1, 2)
        if entry.get("points")
        else np.zeros((0, 2))
    )
    labels = np.asarray(entry.get("labels", []), dtype=np.int64).reshape(-1)
    if len(labels) != len(points):
        problems.append(f"{len(points)} point(s) but {len(labels)} label(s)")
    elif len(labels) and not np.isin(labels, (0, 1)).all():
        problems.append(f"labels must be 0 or 1, got {sorted(set(labels.tolist()))}")
    box = entry.get("box")
    if box is not None:
        if not (isinstance(box, (list, tuple)) and len(box) == 4):
            problems.append(f"box {box!r} must be [x0, y0, x1, y1] or null")
            box = None
        else:
            box = tuple(float(v) for v in box)
            if not (0 <= box[0] < box[2] <= size[0] and 0 <= box[1] < box[3] <= size[1]):
                problems.append(
                    f"box {list(box)} must satisfy 0 <= x0 < x1 <= W and 0 <= y0 < y1 <= H for reference_size {list(size)}"
                )
    if len(points) == 0 and box is None:
        problems.append("no prompt: give points (with labels) or a box")
    if len(points) and not ((points >= 0).all() and (points[:, 0] < size[0]).all() and (points[:, 1] < size[1]).all()):
        problems.append(f"points must lie in [0, W) x [0, H) of reference_size {list(size)}")
    if len(points) and len(labels) == len(points) and not (labels == 1).any() and box is None:
        problems.append("no positive point and no box")
    targets = tuple(str(v) for v in entry["targets"])
    if not targets:
        problems.append("no target views")
    if entry["reference_view"] in targets:
        problems.append(
            f"the reference view {entry['reference_view']!r} is also a target (score it separately, not as a target)"
        )
    if problems:
        raise LayoutError(f"{where} (task {name!r}): " + "; ".join(problems))
    return BenchmarkTask(
        task=name,
        reference_view=str(entry["reference_view"]),
        reference_size=(int(size[0]), int(size[1])),
        points=points,
        labels=labels,
        box=box,
        targets=targets,
        mesh=entry.get("mesh"),
        prompt_rule=str(entry.get("prompt_rule", "")),
    )


def read_layout(folder: str | os.PathLike, check_files: bool = True) -> BenchmarkLayout:
    """Read and check a benchmark folder (module docstring).

    Args:
        folder: the layout folder (holding ``prompts.json``).
        check_files: also check that every target mask (and task mesh) exists.

    Raises:
        LayoutError: naming the file and every problem found.
    """
    root = Path(folder)
    path = root / PROMPTS_FILE
    if not path.is_file():
        raise LayoutError(
            f"{path}: benchmark prompts file not found (scene sheet column 'benchmark' points at its folder)"
        )
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise LayoutError(f"{path}: not valid JSON ({e})") from None
    if data.get("format_version") != FORMAT_VERSION:
        raise LayoutError(f"{path}: format_version {data.get('format_version')!r}, expected {FORMAT_VERSION}")
    entries = data.get("tasks")
    if not isinstance(entries, list) or not entries:
        raise LayoutError(f"{path}: 'tasks' must be a non-empty list")
    tasks = tuple(_task_from_json(e, f"{path}: tasks[{i}]") for i, e in enumerate(entries))
    names = [t.task for t in tasks]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise LayoutError(f"{path}: duplicate task name(s) {dup}")
    layout = BenchmarkLayout(
        root=root,
        name=str(data.get("name", root.name)),
        source=str(data.get("source", "")),
        tasks=tasks,
        occluders=tuple(data.get("occluders", ())),
        surface_distance=None if data.get("surface_distance") is None else float(data["surface_distance"]),
        extra={
            k: v
            for k, v in data.items()
            if k not in ("format_version", "name", "source", "tasks", "occluders", "surface_distance")
        },
    )
    if check_files:
        missing = [str(layout.mask_path(t.task, v)) for t in tasks for v in t.targets if not layout.has_mask(t.task, v)]
        missing += [str(root / t.mesh) for t in tasks if t.mesh and not (root / t.mesh).is_file()]
        missing += [str(root / o) for o in layout.occluders if not (root / o).is_file()]
        if missing:
            raise LayoutError(
                f"{path}: {len(missing)} file(s) named by the layout are missing: " + ", ".join(missing[:10])
            )
    return layout


def write_layout(
    folder: str | os.PathLike,
    tasks: Sequence[BenchmarkTask],
    masks: Mapping[str, Mapping[str, np.ndarray]],
    name: str,
    source: str,
    meshes: Mapping[str, object] | None = None,
    occluders: Mapping[str, object] | None = None,
    surface_distance: float | None = None,
) -> Path:
    """Write a benchmark folder atomically (built beside ``folder``, then renamed onto it).

    Args:
        folder: the layout folder to (re)create.
        tasks: the tasks; ``task.mesh`` is set to ``meshes/{task}.ply`` for tasks in ``meshes``.
        masks: ``{task: {view: HxW bool}}``; every target needs one.
        name, source: recorded in ``prompts.json``.
        meshes: ``{task: trimesh.Trimesh}`` ground-truth object surfaces (input frame).
        occluders: ``{name: trimesh.Trimesh}`` other surfaces (e.g. the ground).
        surface_distance: distance threshold of the surface IoU, scene units.

    Returns:
        ``folder`` as a :class:`Path`.
    """
    folder = Path(folder)
    with atomic_folder(folder) as tmp:
        entries = []
        for t in tasks:
            for v in t.targets:
                if v not in masks.get(t.task, {}):
                    raise LayoutError(f"write_layout: task {t.task!r} has no mask for target view {v!r}")
            for v, m in masks.get(t.task, {}).items():
                write_mask(tmp / "masks" / t.task / f"{v}.png", m)
            entry = t.to_json()
            if meshes and t.task in meshes:
                entry["mesh"] = f"meshes/{t.task}.ply"
                (tmp / "meshes").mkdir(exist_ok=True)
                meshes[t.task].export(tmp / entry["mesh"])
            entries.append(entry)
        occ = []
        for oname, mesh in (occluders or {}).items():
            (tmp / "meshes").mkdir(exist_ok=True)
            occ.append(f"meshes/{oname}.ply")
            mesh.export(tmp / occ[-1])
        data = {"format_version": FORMAT_VERSION, "name": name, "source": source, "tasks": entries}
        if occ:
            data["occluders"] = occ
        if surface_distance is not None:
            data["surface_distance"] = float(surface_distance)
        (tmp / PROMPTS_FILE).write_text(json.dumps(data, indent=1) + "\n")
        read_layout(tmp)  # what we write must read back
    return folder


# ------------------------------------------------------------------------------- prompt rules


def mask_to_click(mask: np.ndarray) -> tuple[float, float]:
    """The one positive click a mask stands for: the pixel centre deepest inside the mask.

    Rule (deterministic): the Euclidean distance transform of the mask (distance of each object
    pixel to the nearest background pixel, the image border counting as background); the click is
    the centre ``(x + 0.5, y + 0.5)`` of the pixel with the largest distance, ties broken by the
    smallest row-major index. On a convex object this is near its centre and never on its edge.

    Raises:
        ValueError: the mask is empty.
    """
    from scipy.ndimage import distance_transform_edt

    m = np.asarray(mask, dtype=bool)
    if not m.any():
        raise ValueError("mask_to_click: the mask is empty")
    dist = distance_transform_edt(np.pad(m, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(dist)), m.shape)  # argmax returns the first maximum
    return float(x) + 0.5, float(y) + 0.5


def mask_to_points(mask: np.ndarray, n: int = 8, depth_fraction: float = 0.3, min_depth: float = 2.0) -> np.ndarray:
    """Up to ``n`` positive points spread over the *interior* of a mask (chain propagation).

    Rule (deterministic): with ``d`` the Euclidean distance transform of the mask (border =
    background), the interior is the pixels with ``d >= max(min_depth, depth_fraction * max d)``
    (the whole mask when that leaves nothing); the first point is :func:`mask_to_click`, the next
    ones farthest-point sampling over the interior (ties: first in row-major order). Keeping off
    the edge matters: a point lifted from a silhouette pixel takes a depth mixed between the
    object and what is behind it.

    Returns:
        ``Kx2`` float ``(x, y)`` pixel centres, ``K <= n``; ``0x2`` for an empty mask.
    """
    from scipy.ndimage import distance_transform_edt

    m = np.asarray(mask, dtype=bool)
    if not m.any() or n < 1:
        return np.zeros((0, 2))
    d = distance_transform_edt(np.pad(m, 1))[1:-1, 1:-1]
    inner = d >= max(min_depth, depth_fraction * float(d.max()))
    if not inner.any():
        inner = m
    ys, xs = np.nonzero(inner)
    pts = np.stack([xs, ys], axis=1).astype(np.float64) + 0.5
    return _farthest_points(pts, np.array(mask_to_click(m)), n)


def scribble_to_points(scribble: np.ndarray, n: int = 5) -> np.ndarray:
    """Up to ``n`` points that stand for a scribble (``HxW`` bool), spread along it.

    Rule (deterministic): the first point is the scribble pixel nearest to the scribble's centroid;
    each next point is the scribble pixel farthest from the points chosen so far (farthest-point
    sampling, Euclidean distance in pixels); ties go to the smallest row-major index. Points are
    pixel centres ``(x + 0.5, y + 0.5)``. A scribble with fewer than ``n`` pixels gives them all.

    Returns:
        ``Kx2`` float ``(x, y)``, ``K = min(n, pixels)``; ``0x2`` for an empty scribble.
    """
    m = np.asarray(scribble, dtype=bool)
    ys, xs = np.nonzero(m)  # row-major order
    if len(xs) == 0 or n < 1:
        return np.zeros((0, 2))
    pts = np.stack([xs, ys], axis=1).astype(np.float64) + 0.5
    return _farthest_points(pts, pts.mean(axis=0), n)


def _farthest_points(pts: np.ndarray, start: np.ndarray, n: int) -> np.ndarray:
    """Farthest-point sampling of up to ``n`` of ``pts`` (``Kx2``, K >= 1): first the point nearest
    ``start`` (``(2,)``), then each time the point farthest (Euclidean) from those chosen; ties go to
    the smallest index; stops early when only chosen points are left."""
    chosen = [int(np.argmin(((pts - start) ** 2).sum(1)))]
    dist = ((pts - pts[chosen[0]]) ** 2).sum(1)
    while len(chosen) < min(n, len(pts)):
        k = int(np.argmax(dist))
        if dist[k] <= 0:
            break
        chosen.append(k)
        dist = np.minimum(dist, ((pts - pts[k]) ** 2).sum(1))
    return pts[chosen]
