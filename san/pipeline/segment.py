"""Rule ``segment_prompts`` (and ``san segment``): masks (and segmented meshes) from click or text prompts.

Prompts: the TSV of :mod:`san.interaction.prompts` (config key ``segment.prompts``), one click per
row, or one text prompt per row (``text`` column; teachers with a text head, SAM 3); every row is
checked before anything is rendered. A text prompt is decoded in the prompt view and, for the mesh,
in the same extra views as clicks (a text needs no tracking: it is the same prompt in every view).

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
that makes it (:class:`san.layout.MissingStageError`).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from san.interaction.overlay import write_mask_png, write_overlay_png
from san.interaction.prompts import PromptError, check_prompts, mesh_views, read_prompts
from san.layout import require_stages
from san.trained_scene import load_trained, session_parts
from san.utils.io import atomic_write_json

if TYPE_CHECKING:  # torch-heavy modules are imported where used, so `san --help` stays fast
    from san.data.scene import Scene
    from san.interaction.session import SegmentationSession
    from san.teachers import Teacher, TeacherConfig

log = logging.getLogger("san")


def segment_scene(
    session: SegmentationSession,
    scene: Scene,
    prompts,
    out_dir: str | os.PathLike,
    scene_id: str = "scene",
    mesh=None,
    views_for_mesh: int = 3,
    teacher_info=None,
    mesh_dir: str | os.PathLike | None = None,
    close_holes: bool = False,
    max_hole_fraction: float = 1.0,
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
        mesh_dir: the ``extract_mesh`` folder of ``mesh``; when it holds the texture atlas, each
            object is also written textured (:func:`san.mesh.export.write_textured_segment`).
        close_holes, max_hole_fraction: close the textured object's open boundary loops
            (``mesh.close_holes``, ``mesh.max_hole_fraction``; :func:`san.mesh.clean.close_holes`).

    Returns:
        The entries of ``summary.json``.
    """
    from san.interaction.mesh_segmentation import export_segmentation
    from san.mesh.export import ATLAS_FILE, scene_up, write_textured_segment

    up = scene_up(scene.frames, scene.normalization)

    check_prompts(prompts, scene_id, scene)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    provenance = (
        {} if teacher_info is None else {"teacher": teacher_info.name, "untrained": bool(teacher_info.untrained)}
    )
    entries = []
    for (view, obj), rows in prompts.groupby(["view", "object"], sort=True):
        name = f"view_{int(view):03d}" + (f"_{obj}" if obj else "")
        log.info(
            "segment: %s %s: %s, rendering and decoding%s",
            scene_id,
            name,
            f"text {rows['text'].iloc[0]!r}"
            if "text" in rows.columns and rows["text"].iloc[0]
            else f"{len(rows)} click(s)",
            f", then voting {views_for_mesh} view(s) onto the mesh" if mesh is not None else "",
        )
        t0 = time.perf_counter()
        session.clear()
        session.set_view(int(view))
        text = rows["text"].iloc[0] if "text" in rows.columns and rows["text"].iloc[0] else None
        if text is not None:
            session.set_text(text)
        else:
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
            "clicks": []
            if text is not None
            else [
                {"x": float(r.x), "y": float(r.y), "label": int(r.label), "line": int(r.line)}
                for r in rows.itertuples()
            ],
            **({"text": text, "line": int(rows["line"].iloc[0])} if text is not None else {}),
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
                up=up,
            )
            textured = {}
            if mesh_dir is not None and (Path(mesh_dir) / ATLAS_FILE).is_file():
                textured = write_textured_segment(
                    mesh_dir,
                    mesh.vertices,
                    selected.numpy(),
                    out / f"{name}_mesh",
                    "segment_textured",
                    scene.normalization,
                    up,
                    {"source_scene": scene_id, "stage": "segment", **provenance},
                    close_holes=close_holes,
                    max_hole_fraction=max_hole_fraction,
                )
            entry["mesh"] = {
                "views": used,
                "segment_faces": export.segment_faces,
                "rest_faces": export.rest_faces,
                "frame": export.frame,
                "files": [str(p.relative_to(out)) for p in export.files] + [f"{name}_mesh/{f}" for f in textured],
                "empty": export.empty,
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
    *,
    cameras: str | os.PathLike,
    model: str | os.PathLike,
    field: str | os.PathLike,
    summary: str | os.PathLike,
    mesh: str | os.PathLike | Callable[[], Path] | None = None,
    export_mesh: bool = True,
    views_for_mesh: int = 3,
    teacher: Teacher | TeacherConfig | None = None,
    device: str = "auto",
    close_holes: bool = False,
    max_hole_fraction: float = 1.0,
) -> list[dict]:
    """Rule ``segment_prompts`` for one scene: the rows of ``scene_id`` in the prompts TSV.

    Args:
        prompts_tsv: the prompts TSV (:mod:`san.interaction.prompts`).
        scene_id: ``dataset/scene``, the rows to segment.
        cameras, model, field, mesh: the rule's inputs (``poses/cameras.json``, ``nerf/model.pt``,
            ``imitation/{variant}/field.pt``, ``mesh/mesh_normalized.ply``); ``mesh`` may be a
            function returning the path (called only when needed), and is required by
            ``export_mesh`` and by a mesh-surface field.
        summary: the rule's output ``summary.json``; the other outputs go beside it.
        export_mesh, views_for_mesh: config ``segment``.
        teacher: a ``TeacherConfig``, a ``Teacher`` or ``None`` (the field's recorded teacher),
            checked against the field by :func:`san.trained_scene.load_trained`.
        device: ``auto | cpu | cuda[:N]``.

    Checks the prompts (all rows of this scene) before loading any model.
    """
    from san.data.scene import load_scene
    from san.interaction.session import SegmentationSession

    prompts = read_prompts(prompts_tsv)
    rows = prompts[prompts["scene"] == scene_id]
    if rows.empty:
        known = sorted(prompts["scene"].unique())
        raise PromptError(f"{prompts_tsv}: no prompts for scene {scene_id!r} (scenes in the file: {', '.join(known)})")
    scene = load_scene(cameras)
    check_prompts(rows, scene_id, scene)
    mesh_file = (mesh() if callable(mesh) else mesh) if export_mesh else None
    if export_mesh and mesh_file is None:
        raise ValueError("segment_prompts: export_mesh needs the mesh (mesh/mesh_normalized.ply)")
    n_objects = len(rows.groupby(["view", "object"]))
    log.info(
        "segment: %s: loading the NeRF, the imitation field and the teacher's decoder (device %s; %d object(s) to segment)",
        scene_id,
        device,
        n_objects,
    )
    t0 = time.perf_counter()
    trained = load_trained(cameras, model, field=field, mesh=mesh_file or mesh, teacher=teacher, device=device)
    parts = session_parts(trained)
    info = parts.teacher_info
    log.info(
        "segment: %s: loaded in %.1f s; teacher %s, %s%s",
        scene_id,
        time.perf_counter() - t0,
        info.name,
        info.label,
        " - UNTRAINED: masks are not SAM's" if info.untrained else "",
    )
    session = SegmentationSession(parts.render_fn, parts.features_fn, parts.decode_fn, scene.frames)
    tri = None
    if export_mesh:
        import trimesh

        tri = trimesh.load(mesh_file, force="mesh", process=False)
    return segment_scene(
        session,
        scene,
        rows,
        Path(summary).parent,
        scene_id,
        tri,
        views_for_mesh,
        parts.teacher_info,
        mesh_dir=Path(mesh_file).parent if export_mesh else None,
        close_holes=close_holes,
        max_hole_fraction=max_hole_fraction,
    )


def segment_scene_folder(
    prompts_tsv: str | os.PathLike,
    scene_id: str,
    scene_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    variant: str = "full",
    export_mesh: bool = True,
    views_for_mesh: int = 3,
    teacher: Teacher | TeacherConfig | None = None,
    device: str = "auto",
) -> list[dict]:
    """``san segment``: :func:`segment_prompts` on the stage files of a trained scene folder
    ``results/{dataset}/{scene}`` (:mod:`san.layout`; a missing one raises
    :class:`~san.layout.MissingStageError` naming it and its rule, before anything is loaded)."""
    stages = ("cameras", "nerf", "field") + (("mesh",) if export_mesh else ())
    paths = require_stages(scene_dir, stages, variant)
    return segment_prompts(
        prompts_tsv,
        scene_id,
        cameras=paths["cameras"],
        model=paths["nerf"],
        field=paths["field"],
        summary=Path(out_dir) / "summary.json",
        mesh=paths["mesh"] if export_mesh else (lambda: require_stages(scene_dir, ("mesh",), variant)["mesh"]),
        export_mesh=export_mesh,
        views_for_mesh=views_for_mesh,
        teacher=teacher,
        device=device,
    )
