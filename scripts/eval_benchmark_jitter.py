"""How stable the ground-truth benchmark is: the same scene and field, the reference clicks moved by
one pixel.

For each ``(dx, dy)`` of ``--offsets`` (pixels; ``0,0`` is the layout as written) the layout is
copied with every task's prompt points moved by it (masks and meshes linked, not copied), and the
benchmark runs exactly as rules ``evaluate_benchmark_teacher`` and ``evaluate_benchmark`` do
(:func:`san.pipeline.evaluate_benchmark.evaluate_benchmark_teacher` /
:func:`~san.pipeline.evaluate_benchmark.evaluate_benchmark`, the config's ``teacher`` and
``benchmark`` sections, the NeRF renders made once by
:func:`san.pipeline.render_benchmark_views.render_benchmark_views`). A one-pixel move keeps the
click deep inside the object, so a good protocol should give nearly the same scores; the spread of
per-object mIoU over the offsets is the noise floor of one run's figures (for example of the
imitation-vs-teacher gap). Writes a JSON with per-offset and per-task figures and their spread::

    python scripts/eval_benchmark_jitter.py --scene-dir results/demo/demo \\
        --layout results/demo/demo/benchmark_gt --configfile config/config.yaml --out jitter.json
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import yaml

from san.pipeline.evaluate_benchmark import evaluate_benchmark, evaluate_benchmark_teacher
from san.pipeline.render_benchmark_views import render_benchmark_views
from san.pipeline.settings import parse_settings
from san.utils.io import atomic_write_json

log = logging.getLogger("san")


def jittered_layout(layout: Path, out: Path, dx: float, dy: float) -> Path:
    """A copy of the layout folder ``layout`` in ``out`` with every prompt point moved by
    ``(dx, dy)`` pixels; its other entries are symbolic links to the original's."""
    out.mkdir(parents=True, exist_ok=True)
    for entry in layout.iterdir():
        if entry.name != "prompts.json" and not (out / entry.name).exists():
            (out / entry.name).symlink_to(entry.resolve())
    prompts = json.loads((layout / "prompts.json").read_text())
    for task in prompts["tasks"]:
        task["points"] = [[x + dx, y + dy] for x, y in task["points"]]
    (out / "prompts.json").write_text(json.dumps(prompts, indent=1))
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scene-dir", required=True, help="results/{dataset}/{scene}")
    p.add_argument("--layout", required=True, help="the ground-truth layout folder")
    p.add_argument("--configfile", default="config/config.yaml", help="its teacher and benchmark sections are used")
    p.add_argument("--variant", default="full")
    p.add_argument("--offsets", default="0,0;1,0;-1,0;0,1;0,-1", help="'dx,dy;dx,dy;...' in pixels")
    p.add_argument("--work", default=None, help="scratch folder (default: beside --out)")
    p.add_argument("--out", required=True, help="JSON file to write")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    settings = parse_settings(yaml.safe_load(Path(args.configfile).read_text()))
    scene_dir, layout = Path(args.scene_dir), Path(args.layout)
    work = Path(args.work) if args.work else Path(args.out).with_suffix(".work")
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    common = dict(cameras=scene_dir / "poses" / "cameras.json", model=scene_dir / "nerf" / "model.pt")
    renders = work / "renders.pt"
    render_benchmark_views(**common, layout_dir=layout, out_path=renders, config=settings.benchmark, device="cpu")
    dataset, scene = scene_dir.parent.name, scene_dir.name
    runs = []
    for item in args.offsets.split(";"):
        dx, dy = (float(v) for v in item.split(","))
        d = work / f"dx{dx:+g}_dy{dy:+g}"
        lay = jittered_layout(layout, d / "layout", dx, dy)
        teacher_files = dict(
            teacher_metrics=d / "teacher" / "metrics.json",
            teacher_views=d / "teacher" / "views.csv",
            teacher_masks=d / "teacher" / "masks.npz",
        )
        evaluate_benchmark_teacher(
            **common,
            layout_dir=lay,
            metrics_json=teacher_files["teacher_metrics"],
            views_csv=teacher_files["teacher_views"],
            masks_npz=teacher_files["teacher_masks"],
            dataset=dataset,
            scene=scene,
            teacher_config=settings.teacher,
            config=settings.benchmark,
            device="cpu",
            renders=renders,
        )
        record = evaluate_benchmark(
            **common,
            field=scene_dir / "imitation" / args.variant / "field.pt",
            mesh=scene_dir / "mesh" / "mesh_normalized.ply",
            layout_dir=lay,
            metrics_json=d / "imitation" / "metrics.json",
            views_csv=d / "imitation" / "views.csv",
            figure_png=d / "imitation" / "qualitative.png",
            dataset=dataset,
            scene=scene,
            variant=args.variant,
            teacher_config=settings.teacher,
            config=settings.benchmark,
            device="cpu",
            renders=renders,
            **teacher_files,
        )
        tasks = {
            name: {
                "iou": task["iou_per_image_mean"],
                "teacher_iou": record["teacher_on_rgb"]["tasks"][name]["iou_per_image_mean"],
            }
            for name, task in record["imitation"]["tasks"].items()
        }
        runs.append(
            {
                "offset_px": [dx, dy],
                "iou_vs_gt": record["iou_vs_gt"],
                "teacher_iou_vs_gt": record["teacher_iou_vs_gt"],
                "gap": record["teacher_iou_vs_gt"] - record["iou_vs_gt"],
                "tasks": tasks,
            }
        )
        log.info("offset %s: imitation %.3f teacher %.3f", (dx, dy), record["iou_vs_gt"], record["teacher_iou_vs_gt"])

    def spread(values):
        v = np.asarray(values, dtype=float)
        return {"mean": float(v.mean()), "std": float(v.std()), "min": float(v.min()), "max": float(v.max())}

    names = list(runs[0]["tasks"])
    result = {
        "scene_dir": str(scene_dir),
        "variant": args.variant,
        "teacher": settings.teacher.name,
        "runs": runs,
        "spread": {
            "iou_vs_gt": spread([r["iou_vs_gt"] for r in runs]),
            "teacher_iou_vs_gt": spread([r["teacher_iou_vs_gt"] for r in runs]),
            "gap": spread([r["gap"] for r in runs]),
            "per_task": {
                n: {
                    "iou": spread([r["tasks"][n]["iou"] for r in runs]),
                    "teacher_iou": spread([r["tasks"][n]["teacher_iou"] for r in runs]),
                }
                for n in names
            },
        },
    }
    atomic_write_json(args.out, result)
    print(json.dumps(result["spread"], indent=1))
    return result


if __name__ == "__main__":
    main()
