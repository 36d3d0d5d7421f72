"""Convert an NVOS or SPIn-NeRF annotation folder into san's ground-truth layout.

The layout is :mod:`san.data.gt_layout` (``prompts.json`` + ``masks/{task}/{view}.png``); point
the scene sheet's ``benchmark`` column at the output folder. Nothing is downloaded: unpack the
benchmark yourself (README, "Benchmark against ground truth"), then run one of::

    python scripts/convert_benchmark.py nvos --root NVOS --scene fern --out benchmarks/llff/fern
    python scripts/convert_benchmark.py spinnerf --scene-dir spinnerf/book --out benchmarks/spinnerf/book

NVOS (Ren et al., CVPR 2022; LLFF scenes). One reference view with scribbles and one target view
with a mask per scene, read from (each path overridable)::

    {root}/reference_image/{scene}/{view}.{png,jpg,JPG}   the reference view (its name = the view)
    {root}/scribbles/{scene}/*pos*.png                     positive scribbles (nonzero = stroke)
    {root}/scribbles/{scene}/*neg*.png                     negative scribbles
    {root}/masks/{scene}/{view}[_mask].{png,jpg}           the target view's ground-truth mask

Scribbles become points by :func:`san.data.gt_layout.scribble_to_points` (``--points-per-scribble``
per connected stroke file, default 5: farthest-point sampling from the point nearest the stroke's
centroid). One task named ``--task`` (default the scene).

SPIn-NeRF (Mirzaei et al., CVPR 2023). Every annotated view has a mask, read from
``{scene_dir}/{masks}`` (default ``images_4/label``; nonzero = object). The protocol: prompt in the
first annotated view (sorted by file name), score every other annotated view. SPIn-NeRF ships no
clicks, so the prompt is one positive click, :func:`san.data.gt_layout.mask_to_click` of the
first mask (the pixel deepest inside it); ``--box`` adds the mask's bounding box.

View names are file stems; they must match the image stems of the scene's ``cameras.json``
(check with ``--cameras results/{dataset}/{scene}/poses/cameras.json``). Masks must be at a
uniform downscale of the images (LLFF ``images_4``: 1/4): the harness renders at the mask's size.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

from san.data.gt_layout import (
    BenchmarkTask,
    LayoutError,
    mask_to_click,
    read_layout,
    read_mask,
    scribble_to_points,
    write_layout,
)

IMAGE_EXT = (".png", ".jpg", ".jpeg", ".JPG", ".PNG", ".JPEG")


def _images(folder: Path, pattern: str = "*") -> list[Path]:
    return sorted(p for p in folder.glob(pattern) if p.suffix in IMAGE_EXT and p.is_file())


def _one(paths: list[Path], what: str, where: Path) -> Path:
    if len(paths) != 1:
        raise SystemExit(f"{where}: expected exactly one {what}, found {len(paths)}: {[p.name for p in paths]}")
    return paths[0]


def _image_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as im:
        return im.size


def convert_nvos(
    root: Path,
    scene: str,
    out: Path,
    task: str | None = None,
    points_per_scribble: int = 5,
    reference_dir: Path | None = None,
    scribble_dir: Path | None = None,
    mask_dir: Path | None = None,
) -> Path:
    """NVOS scene -> layout (module docstring). Returns ``out``."""
    reference_dir = reference_dir or root / "reference_image" / scene
    scribble_dir = scribble_dir or root / "scribbles" / scene
    mask_dir = mask_dir or root / "masks" / scene
    for d in (reference_dir, scribble_dir, mask_dir):
        if not d.is_dir():
            raise SystemExit(
                f"{d}: not found (NVOS layout: reference_image/, scribbles/, masks/ per scene; see --help)"
            )
    ref_image = _one(_images(reference_dir), "reference image", reference_dir)
    size = _image_size(ref_image)
    pos_files = _images(scribble_dir, "*pos*")
    neg_files = _images(scribble_dir, "*neg*")
    if not pos_files:
        raise SystemExit(f"{scribble_dir}: no positive scribble (*pos*.png)")
    points, labels = [], []
    for label, files in ((1, pos_files), (0, neg_files)):
        for f in files:
            s = read_mask(f)
            if (s.shape[1], s.shape[0]) != size:
                raise SystemExit(
                    f"{f}: scribble size {s.shape[1]}x{s.shape[0]} differs from the reference image {size[0]}x{size[1]}"
                )
            pts = scribble_to_points(s, points_per_scribble)
            points.append(pts)
            labels += [label] * len(pts)
    mask_file = _one(_images(mask_dir), "target mask", mask_dir)
    target = re.sub(r"_mask$", "", mask_file.stem)
    name = task or scene
    t = BenchmarkTask(
        task=name,
        reference_view=ref_image.stem,
        reference_size=size,
        points=np.concatenate(points),
        labels=np.array(labels),
        box=None,
        targets=(target,),
        prompt_rule=f"NVOS scribbles -> scribble_to_points, {points_per_scribble} per scribble file "
        f"(farthest-point sampling from the pixel nearest the stroke centroid); positive: {[f.name for f in pos_files]}, negative: {[f.name for f in neg_files]}",
    )
    return write_layout(
        out,
        [t],
        {name: {target: read_mask(mask_file)}},
        name=f"nvos/{scene}",
        source=f"NVOS (Ren et al., CVPR 2022), converted from {root} by scripts/convert_benchmark.py",
    )


def convert_spinnerf(
    scene_dir: Path, out: Path, masks: str = "images_4/label", task: str | None = None, box: bool = False
) -> Path:
    """SPIn-NeRF scene -> layout (module docstring). Returns ``out``."""
    mask_dir = scene_dir / masks
    files = _images(mask_dir)
    if len(files) < 2:
        raise SystemExit(f"{mask_dir}: need at least two annotated views (masks), found {len(files)}")
    read = {f.stem: read_mask(f) for f in files}
    ref = files[0].stem
    m = read[ref]
    if not m.any():
        raise SystemExit(f"{files[0]}: the first annotated view's mask is empty; cannot place the prompt")
    x, y = mask_to_click(m)
    bbox = None
    if box:
        ys, xs = np.nonzero(m)
        bbox = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
    name = task or scene_dir.name
    t = BenchmarkTask(
        task=name,
        reference_view=ref,
        reference_size=(m.shape[1], m.shape[0]),
        points=np.array([[x, y]]),
        labels=np.array([1]),
        box=bbox,
        targets=tuple(f.stem for f in files[1:]),
        prompt_rule="SPIn-NeRF: first annotated view (by file name) is the reference; one positive click = mask_to_click of its mask"
        + (" plus the mask's bounding box" if box else ""),
    )
    return write_layout(
        out,
        [t],
        {name: read},
        name=f"spinnerf/{scene_dir.name}",
        source=f"SPIn-NeRF (Mirzaei et al., CVPR 2023) masks from {mask_dir}, converted by scripts/convert_benchmark.py",
    )


def check_cameras(out: Path, cameras: Path) -> None:
    names = [Path(f["image"]).stem for f in json.loads(cameras.read_text())["frames"]]
    try:
        read_layout(out).check_views(names)
    except LayoutError as e:
        raise SystemExit(str(e)) from None


def main(argv: list[str] | None = None) -> Path:
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    sub = p.add_subparsers(dest="format", required=True)
    n = sub.add_parser("nvos", help="NVOS: reference view with scribbles, one target mask")
    n.add_argument("--root", type=Path, required=True, help="the unpacked NVOS folder")
    n.add_argument("--scene", required=True, help="LLFF scene name (e.g. fern)")
    n.add_argument("--points-per-scribble", type=int, default=5)
    n.add_argument("--reference-dir", type=Path, default=None, help="override {root}/reference_image/{scene}")
    n.add_argument("--scribble-dir", type=Path, default=None, help="override {root}/scribbles/{scene}")
    n.add_argument("--mask-dir", type=Path, default=None, help="override {root}/masks/{scene}")
    s = sub.add_parser("spinnerf", help="SPIn-NeRF: masks in every annotated view")
    s.add_argument("--scene-dir", type=Path, required=True, help="one unpacked SPIn-NeRF scene folder")
    s.add_argument("--masks", default="images_4/label", help="mask folder inside the scene (default %(default)s)")
    s.add_argument("--box", action="store_true", help="add the first mask's bounding box to the prompt")
    for q in (n, s):
        q.add_argument("--out", type=Path, required=True, help="layout folder to write")
        q.add_argument("--task", default=None, help="task name (default: the scene)")
        q.add_argument("--cameras", type=Path, default=None, help="poses/cameras.json to check the view names against")
    args = p.parse_args(argv)
    if args.format == "nvos":
        out = convert_nvos(
            args.root,
            args.scene,
            args.out,
            args.task,
            args.points_per_scribble,
            args.reference_dir,
            args.scribble_dir,
            args.mask_dir,
        )
    else:
        out = convert_spinnerf(args.scene_dir, args.out, args.masks, args.task, args.box)
    if args.cameras is not None:
        check_cameras(out, args.cameras)
    layout = read_layout(out)
    for t in layout.tasks:
        print(
            f"{out}: task {t.task}: reference {t.reference_view} ({len(t.points)} point(s){', box' if t.box else ''}), {len(t.targets)} target(s)"
        )
    return out


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
