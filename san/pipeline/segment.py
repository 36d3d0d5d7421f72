"""``san segment`` and rule ``segment_prompts``: masks (and segmented meshes) from click prompts.

Prompts TSV (config key ``segment.prompts``), one click per row, ``#`` comments allowed::

    scene       view  x      y      label
    llff/fern   3     120.5  80.5   1
    llff/fern   3     30.5   40.5   0

``scene`` is the scene id ``dataset/name``; ``view`` the index of a frame in the scene's
``poses/cameras.json`` (file order, train and test frames alike); ``(x, y)`` pixels of that view
(pixel centres at ``+0.5``); ``label`` 1 positive, 0 negative. The rows of one ``(scene, view)``
are one object; an optional ``object`` column splits a view's rows into several objects. Every
row is checked before anything is rendered, and all problems are reported at once, each with its
line number (unknown scene or view, click outside the image, bad label).

Outputs of one scene, in ``out_dir`` (each written atomically)::

    {name}_mask.png      HxW, 255 inside the mask, 0 outside
    {name}_overlay.png   the rendered view, mask tinted, positive clicks green, negative red
    {name}.json          score, clicks (with their status in the view), files
    {name}_mesh/         with export_mesh: segment.{ply,glb}, segment_rest.{ply,glb}, segment.json
    summary.json         one entry per object, written last

with ``name = view_{view:03d}`` (``view_{view:03d}_{object}`` with an ``object`` column). The
segmented mesh comes from ``mesh/mesh_normalized.ply``: the clicks are tracked into
``views_for_mesh - 1`` more training views spread over the training list, a mask is predicted in
each (views where no click is usable are skipped), the masks are voted onto the faces
(:class:`san.interaction.mesh_segmentation.MeshSegmenter`) and the result is written in the
capture's input frame.

Every stage the session needs is checked first; a missing file is named together with the rule
that makes it (:class:`MissingStageError`).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from san.utils.io import atomic_path, atomic_write_json

if TYPE_CHECKING:  # torch-heavy modules are imported where used, so `san --help` stays fast
    from san.data.scene import Scene
    from san.interaction.session import SegmentationResult, SegmentationSession

log = logging.getLogger("san")

PROMPT_COLUMNS = ("scene", "view", "x", "y", "label")

# Stage files under results/{dataset}/{scene}, and the rule that makes each.
STAGE_FILES = {
    "cameras": ("poses/cameras.json", "prepare_poses"),
    "nerf": ("nerf/model.pt", "train_nerf"),
    "field": ("imitation/{variant}/field.pt", "train_imitation"),
    "mesh": ("mesh/mesh_normalized.ply", "extract_mesh"),
}

POSITIVE_COLOUR = (40, 220, 60)
NEGATIVE_COLOUR = (230, 40, 40)
MASK_TINT = np.array([30, 144, 255], dtype=np.float32)


class MissingStageError(FileNotFoundError):
    """A stage output the segmentation needs is absent; the message names the file and its rule."""


class PromptError(ValueError):
    """Bad prompts TSV rows; the message lists every problem with its line number."""


def stage_path(scene_dir: str | os.PathLike, stage: str, variant: str = "full") -> Path:
    """Path of a stage file (:data:`STAGE_FILES`) in a scene folder."""
    return Path(scene_dir) / STAGE_FILES[stage][0].format(variant=variant)


def require_stages(scene_dir: str | os.PathLike, stages: Sequence[str], variant: str = "full") -> dict[str, Path]:
    """``{stage: path}``; raises :class:`MissingStageError` naming every missing file and its rule."""
    paths = {s: stage_path(scene_dir, s, variant) for s in stages}
    missing = [f"{p} (made by rule {STAGE_FILES[s][1]})" for s, p in paths.items() if not p.is_file()]
    if missing:
        raise MissingStageError(f"{scene_dir}: missing stage output(s):\n    " + "\n    ".join(missing))
    return paths


# ----------------------------------------------------------------------------- trained scene parts


@dataclass(frozen=True)
class SceneParts:
    """The three callables of a :class:`SegmentationSession` for a trained scene, plus its scene and
    the decoding teacher's :class:`~san.teachers.base.TeacherInfo` (name, ``untrained`` flag)."""

    scene: Scene
    render_fn: Callable
    features_fn: Callable
    decode_fn: Callable
    teacher_info: Any = None


def scene_parts(
    scene_dir: str | os.PathLike,
    variant: str = "full",
    teacher: Any = None,
    device: str = "auto",
    feature_hw: Sequence[tuple[int, int]] | None = None,
) -> SceneParts:
    """Load ``cameras.json``, the NeRF, the imitation field and the teacher of a scene folder
    (and ``mesh/mesh_normalized.ply`` for the mesh-surface variant).

    Args:
        scene_dir: ``results/{dataset}/{scene}``.
        variant: imitation variant (``imitation/{variant}/field.pt``).
        teacher: a :class:`san.teachers.Teacher`, a :class:`san.teachers.TeacherConfig` or ``None``
            (the default config); it must be the teacher the field was trained to imitate.
        device: ``auto | cpu | cuda[:N]``.
        feature_hw: per feature map, the ``(h, w)`` of the rendered (padded-square) map; default
            the teacher's (SAM: 64x64).
    """
    import torch

    from san.data.scene import load_scene
    from san.imitation.model import load_imitation
    from san.imitation.render import render_features
    from san.models.nerf import load_nerf
    from san.rendering.mesh_raycast import load_mesh
    from san.teachers import Teacher, TeacherConfig, teacher_from_config
    from san.utils.device import resolve_device

    paths = require_stages(scene_dir, ("cameras", "nerf", "field"), variant)
    dev = resolve_device(device)
    scene = load_scene(paths["cameras"])
    nerf = load_nerf(paths["nerf"], dev)
    field = load_imitation(paths["field"], dev)
    if hasattr(nerf, "eval"):
        nerf.eval()
    mesh = None
    if field.mesh_surface:  # the mesh-surface variant renders features at the mesh's surface points
        mesh = load_mesh(require_stages(scene_dir, ("mesh",), variant)["mesh"], dev)
    if not isinstance(teacher, Teacher):
        teacher = teacher_from_config(teacher if teacher is not None else TeacherConfig(), str(dev))
    if tuple(map(tuple, field.feature_shapes)) != tuple(map(tuple, teacher.info.feature_shapes)):
        raise ValueError(
            f"{paths['field']}: the field imitates feature maps {field.feature_shapes}, but teacher "
            f"{teacher.info.name!r} decodes {teacher.info.feature_shapes}; pass the teacher the field was trained with"
        )

    def _camera(c2w, K):
        return torch.as_tensor(np.asarray(c2w), dtype=torch.float32, device=dev), torch.as_tensor(
            np.asarray(K), dtype=torch.float32, device=dev
        )

    @torch.no_grad()
    def render_fn(c2w, K, width, height):
        c, k = _camera(c2w, K)
        return nerf.render_camera(c, k, width, height)

    @torch.no_grad()
    def features_fn(c2w, K, width, height):
        c, k = _camera(c2w, K)
        return render_features(nerf, field, c, k, width, height, feature_hw, mesh=mesh)

    @torch.no_grad()
    def decode_fn(features, prompts, image_size):
        return teacher.decode(features, prompts, image_size)

    return SceneParts(scene, render_fn, features_fn, decode_fn, teacher.info)


# ------------------------------------------------------------------------------------ prompts TSV


def read_prompts(path: str | os.PathLike):
    """Read a prompts TSV (module docstring) into a DataFrame with a ``line`` column (1-based file
    line, for messages). Column and type problems are reported all at once."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise PromptError(f"{path}: prompts file not found (config key segment.prompts)")
    df = pd.read_csv(path, sep="\t", dtype=str, comment="#", skip_blank_lines=True, keep_default_na=False)
    missing = [c for c in PROMPT_COLUMNS if c not in df.columns]
    if missing:
        raise PromptError(f"{path}: missing column(s) {missing}; columns are {', '.join(PROMPT_COLUMNS)}[, object]")
    extra = [c for c in df.columns if c not in (*PROMPT_COLUMNS, "object")]
    if extra:
        raise PromptError(f"{path}: unknown column(s) {extra}; columns are {', '.join(PROMPT_COLUMNS)}[, object]")
    if "object" not in df.columns:
        df["object"] = ""
    lines = _data_lines(path)
    if len(lines) != len(df):
        lines = list(range(2, 2 + len(df)))
    df["line"] = lines
    problems = []
    for i, row in df.iterrows():
        where = f"line {row['line']}"
        try:
            int(row["view"])
        except ValueError:
            problems.append(f"{where}: view {row['view']!r} is not an integer")
        for c in ("x", "y"):
            try:
                if not np.isfinite(float(row[c])):
                    raise ValueError
            except ValueError:
                problems.append(f"{where}: {c} {row[c]!r} is not a finite number")
        if row["label"] not in ("0", "1"):
            problems.append(f"{where}: label {row['label']!r} must be 1 (positive) or 0 (negative)")
    if df.empty:
        problems.append("no prompts")
    if problems:
        raise PromptError(f"{path}: " + "\n  ".join(problems))
    df["view"] = df["view"].astype(int)
    df["x"] = df["x"].astype(float)
    df["y"] = df["y"].astype(float)
    df["label"] = df["label"].astype(int)
    return df


def _data_lines(path: Path) -> list[int]:
    """1-based line numbers of the data rows (not the header, comments or blank lines)."""
    numbers = [
        n
        for n, text in enumerate(path.read_text().splitlines(), start=1)
        if text.strip() and not text.lstrip().startswith("#")
    ]
    return numbers[1:]


def check_prompts(prompts, scene_id: str, scene: Scene) -> None:
    """Check one scene's prompt rows against its cameras (view index, click inside the image);
    raises :class:`PromptError` listing every problem."""
    problems = []
    n = len(scene.frames)
    for _, row in prompts.iterrows():
        where = f"line {row['line']} ({scene_id}, view {row['view']})"
        if not 0 <= row["view"] < n:
            problems.append(f"{where}: unknown view {row['view']}; {scene_id} has views 0..{n - 1}")
            continue
        frame = scene.frames[row["view"]]
        if not (0 <= row["x"] < frame.width and 0 <= row["y"] < frame.height):
            problems.append(
                f"{where}: click ({row['x']:g}, {row['y']:g}) is outside the {frame.width}x{frame.height} image "
                f"(x in [0, {frame.width}), y in [0, {frame.height}))"
            )
    if problems:
        raise PromptError("prompts: " + "\n  ".join(problems))


# ---------------------------------------------------------------------------------------- outputs


def _numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


def write_mask_png(path: str | os.PathLike, mask) -> None:
    """``HxW`` bool mask -> 8-bit PNG (255 inside)."""
    from PIL import Image

    m = _numpy(mask).astype(bool)
    with atomic_path(path) as tmp:
        Image.fromarray((m * 255).astype(np.uint8), mode="L").save(tmp)


def overlay_image(rgb, mask, points=None, labels=None, box=None) -> np.ndarray:
    """``HxWx3`` uint8: ``rgb`` (float in [0, 1]) with the mask tinted, clicks and box drawn."""
    from PIL import Image, ImageDraw

    img = np.clip(_numpy(rgb).astype(np.float32), 0, 1) * 255
    m = _numpy(mask).astype(bool)
    img[m] = 0.45 * img[m] + 0.55 * MASK_TINT
    pil = Image.fromarray(img.astype(np.uint8))
    draw = ImageDraw.Draw(pil)
    r = max(2, round(min(pil.size) / 80))
    if points is not None:
        for (x, y), lab in zip(np.asarray(points).reshape(-1, 2), np.asarray(labels).reshape(-1)):
            colour = POSITIVE_COLOUR if int(lab) == 1 else NEGATIVE_COLOUR
            draw.ellipse([x - r, y - r, x + r, y + r], fill=colour, outline=(255, 255, 255))
    if box is not None:
        draw.rectangle([float(v) for v in np.asarray(box).reshape(4)], outline=(255, 220, 0), width=max(1, r // 2))
    return np.asarray(pil)


def write_overlay_png(path: str | os.PathLike, rgb, result: SegmentationResult) -> None:
    from PIL import Image

    p = result.prompts
    arr = overlay_image(rgb, result.mask, p.points.numpy(), p.labels.numpy(), None if p.box is None else p.box.numpy())
    with atomic_path(path) as tmp:
        Image.fromarray(arr).save(tmp)


def mesh_views(scene: Scene, view: int, count: int) -> list[int]:
    """``view`` plus ``count - 1`` training views spread evenly over the training list."""
    train = [i for i in scene.indices("train") if i != view] or [i for i in range(len(scene.frames)) if i != view]
    extra = max(0, min(count - 1, len(train)))
    picks = [train[int(round(k))] for k in np.linspace(0, len(train) - 1, extra)] if extra else []
    return [view] + sorted(set(picks))


def segment_scene(
    session: SegmentationSession,
    scene: Scene,
    prompts,
    out_dir: str | os.PathLike,
    scene_id: str = "scene",
    mesh=None,
    views_for_mesh: int = 3,
    teacher_info=None,
) -> list[dict]:
    """Segment every object of one scene's prompt rows (module docstring) and write the outputs.

    Args:
        session: a session over ``scene.frames`` (e.g. :meth:`SegmentationSession.from_scene`).
        scene: the scene (cameras and normalisation).
        prompts: the scene's rows of :func:`read_prompts`.
        out_dir: output folder.
        mesh: ``trimesh.Trimesh`` in the normalised frame, or ``None`` for no mesh export.
        views_for_mesh: views voted onto the mesh (the prompt view included).
        teacher_info: the decoder's :class:`~san.teachers.base.TeacherInfo`; its name and
            ``untrained`` flag go into every JSON file and mesh export.

    Returns:
        The entries of ``summary.json``.
    """
    from san.interaction.mesh_segmentation import export_segmentation

    check_prompts(prompts, scene_id, scene)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    provenance = (
        {} if teacher_info is None else {"teacher": teacher_info.name, "untrained": bool(teacher_info.untrained)}
    )
    entries = []
    for (view, obj), rows in prompts.groupby(["view", "object"], sort=True):
        name = f"view_{int(view):03d}" + (f"_{obj}" if obj else "")
        t0 = time.perf_counter()
        session.clear()
        session.set_view(int(view))
        session.add_clicks(rows[["x", "y"]].to_numpy(), rows["label"].to_numpy())
        result = session.predict()
        write_mask_png(out / f"{name}_mask.png", result.mask)
        write_overlay_png(out / f"{name}_overlay.png", session.image, result)
        entry = {
            "scene": scene_id,
            "view": int(view),
            "object": obj,
            "score": result.score,
            "mask_pixels": int(result.mask.sum()),
            "clicks": [
                {"x": float(r.x), "y": float(r.y), "label": int(r.label), "line": int(r.line)}
                for r in rows.itertuples()
            ],
            "files": {"mask": f"{name}_mask.png", "overlay": f"{name}_overlay.png"},
            **provenance,
        }
        if mesh is not None:
            views = mesh_views(scene, int(view), views_for_mesh)
            seg, used = session.segment_mesh(mesh, views)
            selected = seg.selected()
            export = export_segmentation(
                mesh,
                selected,
                out / f"{name}_mesh",
                normalization=scene.normalization,
                frame="input",
                metadata={
                    "scene": scene_id,
                    "prompt_view": int(view),
                    "mesh_views": used,
                    "vote_threshold": seg.vote_threshold,
                    **provenance,
                },
            )
            entry["mesh"] = {
                "views": used,
                "segment_faces": export.segment_faces,
                "rest_faces": export.rest_faces,
                "frame": export.frame,
                "files": [
                    str(p.relative_to(out))
                    for p in (export.segment_ply, export.segment_glb, export.rest_ply, export.rest_glb)
                ],
            }
        entry["seconds"] = time.perf_counter() - t0
        atomic_write_json(out / f"{name}.json", entry)
        log.info(
            "segment: %s %s score %.3f, %d mask pixels%s",
            scene_id,
            name,
            result.score,
            entry["mask_pixels"],
            " (UNTRAINED teacher: not SAM's masks)" if provenance.get("untrained") else "",
        )
        entries.append(entry)
    atomic_write_json(out / "summary.json", {"scene": scene_id, **provenance, "objects": entries})
    return entries


def segment_prompts(
    prompts_tsv: str | os.PathLike,
    scene_id: str,
    scene_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    variant: str = "full",
    export_mesh: bool = True,
    views_for_mesh: int = 3,
    teacher: Any = None,
    device: str = "auto",
) -> list[dict]:
    """Rule ``segment_prompts`` for one scene: the rows of ``scene_id`` in the prompts TSV.

    Checks the prompts (all rows of this scene) and the stage files before loading any model.
    """
    from san.data.scene import load_scene
    from san.interaction.session import SegmentationSession

    prompts = read_prompts(prompts_tsv)
    rows = prompts[prompts["scene"] == scene_id]
    if rows.empty:
        known = sorted(prompts["scene"].unique())
        raise PromptError(f"{prompts_tsv}: no prompts for scene {scene_id!r} (scenes in the file: {', '.join(known)})")
    stages = ("cameras", "nerf", "field") + (("mesh",) if export_mesh else ())
    paths = require_stages(scene_dir, stages, variant)
    scene = load_scene(paths["cameras"])
    check_prompts(rows, scene_id, scene)
    parts = scene_parts(scene_dir, variant=variant, teacher=teacher, device=device)
    session = SegmentationSession(parts.render_fn, parts.features_fn, parts.decode_fn, scene.frames)
    mesh = None
    if export_mesh:
        import trimesh

        mesh = trimesh.load(paths["mesh"], force="mesh", process=False)
    return segment_scene(session, scene, rows, out_dir, scene_id, mesh, views_for_mesh, parts.teacher_info)


# -------------------------------------------------------------------------------------------- CLI


SEGMENT_HELP = "masks (and a segmented mesh) of a trained scene from clicks"


def add_segment_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``san segment`` (the :data:`san.cli.COMMANDS` entry)."""
    p.description = (
        "Segment a trained scene from clicks: --view with --click options, or a prompts TSV (columns scene, view, x, y, "
        "label). Writes *_mask.png, *_overlay.png, *.json and, with --export-mesh, the segmented mesh (input frame)."
    )
    p.add_argument("--scene-dir", required=True, help="trained scene folder results/{dataset}/{scene}")
    p.add_argument(
        "--scene-id", default=None, help="scene id dataset/name (default: the last two parts of --scene-dir)"
    )
    p.add_argument("--view", type=int, default=None, help="view index in poses/cameras.json (with --click)")
    p.add_argument(
        "--click",
        action="append",
        default=[],
        metavar="X,Y[,LABEL]",
        help="a click in pixels; LABEL 1 (default) positive, 0 negative; repeatable",
    )
    p.add_argument("--prompts", default=None, help="prompts TSV (instead of --view/--click)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--variant", default="full", help="imitation variant (imitation/{variant}/field.pt)")
    p.add_argument("--teacher", default=None, help="teacher the field imitates (default: the config default)")
    p.add_argument("--checkpoint", default=None, help="teacher weights file")
    p.add_argument("--export-mesh", action="store_true", help="also cut the object out of mesh/mesh_normalized.ply")
    p.add_argument("--views-for-mesh", type=int, default=3, help="views voted onto the mesh (default 3)")
    p.add_argument("--device", default="auto")


def run_segment(args: argparse.Namespace) -> int:
    """Run ``san segment``; bad input raises :class:`san.cli.CommandError` (exit code 1)."""
    from san.cli import CommandError
    from san.interaction.session import SessionError

    scene_id = args.scene_id or "/".join(Path(args.scene_dir).resolve().parts[-2:])
    if args.prompts is not None:
        if args.click or args.view is not None:
            raise CommandError("give either --prompts or --view with --click, not both")
        tsv = Path(args.prompts)
    else:
        if args.view is None or not args.click:
            raise CommandError("give --view and at least one --click X,Y[,LABEL] (or --prompts TSV)")
        lines = ["\t".join(PROMPT_COLUMNS)]
        for c in args.click:
            v = c.split(",")
            if len(v) not in (2, 3):
                raise CommandError(f"--click {c!r}: expected X,Y or X,Y,LABEL")
            lines.append("\t".join([scene_id, str(args.view), v[0], v[1], v[2] if len(v) == 3 else "1"]))
        tsv = Path(args.out) / "prompts.tsv"
        tsv.parent.mkdir(parents=True, exist_ok=True)
        tsv.write_text("\n".join(lines) + "\n")
    teacher = None
    if args.teacher is not None:
        from san.teachers import TeacherConfig

        teacher = TeacherConfig(name=args.teacher, checkpoint=args.checkpoint)
    try:
        entries = segment_prompts(
            tsv,
            scene_id,
            args.scene_dir,
            args.out,
            args.variant,
            args.export_mesh,
            args.views_for_mesh,
            teacher,
            args.device,
        )
    except (PromptError, MissingStageError, SessionError) as e:
        raise CommandError(str(e)) from e
    for e in entries:
        mesh = f", mesh {e['mesh']['segment_faces']} faces" if "mesh" in e else ""
        print(
            f"{e['scene']} view {e['view']}{' ' + e['object'] if e['object'] else ''}: score {e['score']:.3f}, {e['mask_pixels']} px{mesh}"
        )
    print(f"written to {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m san.pipeline.segment ARGS``: the same as ``san segment ARGS``."""
    from san.cli import main as cli_main

    return cli_main(["segment", *(argv if argv is not None else sys.argv[1:])])


if __name__ == "__main__":
    sys.exit(main())
