"""One-shot GPU check of the paper preset's costs: NeRF training, imitation encoding, click-to-mask.

Runs on whatever device ``--device`` resolves to and writes one JSON file (``--out``) with:

* ``nerf``: training steps per second of the fern NeRF with the ``paper`` preset (8192 rays x 32
  samples = 2^18 samples per step, proposal sampler 128/64, pure-torch hash grid), in eager mode and
  with ``torch.compile`` on the fields (compile time reported apart), the 10k-step time *extrapolated*
  from the timed steps, and the test PSNR after the steps run;
* ``imitation``: the feature field's encoding of one 512x512 view (paper preset field, ViT-H feature
  shape 256x64x64 over the 1024 px padded input; freshly initialised: the cost does not depend on
  the weights), the decoder with one click, and click-to-mask frames per second
  (``1000 / (imitation_encode + decode)``), plus Table 1's imitation FPS that also renders the RGB
  view (``1000 / (rgb_render + imitation_encode + decode)``, :mod:`san.evaluation.timing`);
* ``teacher``: the ViT-H image encoder at 1024x1024 (``sam_vit_h_untrained``: random weights, for
  timing only) and its FPS (``1000 / (rgb_render + teacher_encode + decode)``);
* ``peak_memory_gib`` per section (``torch.cuda.max_memory_allocated``), the device's name, torch
  and CUDA versions.

``--dry-run`` runs the same code path at tiny sizes on any device (CPU in CI): a few NeRF steps of
256 rays, a 64x64 view and the untrained tiny SAM instead of ViT-H. Its figures mean nothing.

    python benchmarks/gpu_check.py --out gpu_check.json                 # on a GPU machine
    python benchmarks/gpu_check.py --dry-run --device cpu --out /tmp/gpu_check_dry.json
"""

from __future__ import annotations

import argparse
import logging
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from san.cameras import Camera
from san.data.prepare import prepare_scene
from san.evaluation.protocol import click_grid, decode_click, image_batch
from san.evaluation.timing import time_fn
from san.imitation.config import imitation_config
from san.imitation.model import ImitationModel
from san.imitation.render import render_features
from san.models.nerf_trainer import NeRFTrainer, train_nerf_config
from san.teachers import build_teacher
from san.utils.device import resolve_device, synchronize
from san.utils.io import atomic_write_json

REPO = Path(__file__).resolve().parents[1]
FERN = REPO.parent / "shared" / "data" / "llff_fern" / "fern"
log = logging.getLogger("san.gpu_check")

FULL = {"rays": 8192, "view": 512, "teacher": "sam_vit_h_untrained", "nerf_seconds": 30.0, "repeats": 20, "warmup": 3}
DRY = {"rays": 256, "view": 64, "teacher": "sam_untrained_tiny", "nerf_seconds": 2.0, "repeats": 2, "warmup": 1}


def _peak_gib(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    return round(torch.cuda.max_memory_allocated(device) / 2**30, 3)


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def timed_steps(
    trainer: NeRFTrainer, device: torch.device, seconds: float, min_steps: int, max_steps: int
) -> dict[str, Any]:
    """Run training steps for ``seconds`` of wall time (at least ``min_steps``); steps per second."""
    synchronize(device)
    t0, n = time.perf_counter(), 0
    while n < max_steps and (n < min_steps or time.perf_counter() - t0 < seconds):
        trainer.step()
        n += 1
        if n % 25 == 0:
            synchronize(device)
    synchronize(device)
    wall = time.perf_counter() - t0
    return {"steps": n, "seconds": round(wall, 3), "it_per_s": round(n / wall, 3)}


def compile_fields(trainer: NeRFTrainer) -> None:
    """``torch.compile`` the radiance and proposal fields in place (``nn.Module.compile``)."""
    trainer.model.field.compile()
    for p in trainer.model.proposals:
        p.compile()


def nerf_section(
    scene, device: torch.device, sizes: dict, compile_: bool, warmup_steps: int
) -> tuple[dict, NeRFTrainer]:
    """Train the paper preset for a fixed wall budget; returns figures and the trainer."""
    overrides = {"preset": "paper", "rays_per_batch": sizes["rays"], "checkpoint_every": 0}
    config = train_nerf_config(overrides)
    _reset_peak(device)
    trainer = NeRFTrainer(scene, config, device)
    out: dict[str, Any] = {
        "compile": compile_,
        "rays_per_batch": config.rays_per_batch,
        "samples_per_step": config.rays_per_batch * config.model.sampler.num_samples,
        "encoding_backend": trainer.model.encoding_backend,
    }
    t0 = time.perf_counter()
    if compile_:
        compile_fields(trainer)
    for _ in range(warmup_steps):
        trainer.step()
    synchronize(device)
    out["warmup_steps"] = warmup_steps
    out["warmup_seconds"] = round(time.perf_counter() - t0, 3)
    timing = timed_steps(trainer, device, sizes["nerf_seconds"], min_steps=5, max_steps=config.steps)
    out.update(timing)
    out["extrapolated_10k_steps_s"] = round(10000 / timing["it_per_s"], 1)
    out["extrapolated_10k_steps_note"] = "10000 / timed it/s; compile and warm-up time excluded"
    out["peak_memory_gib"] = _peak_gib(device)
    return out, trainer


def square_view(scene, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first test view re-framed as a ``size x size`` camera: same c2w, focal scaled so the
    original longest side spans ``size`` pixels, principal point at the centre."""
    f = scene.frames[scene.indices("test")[0]]
    scale = size / max(f.width, f.height)
    K = np.array(f.K, dtype=np.float64).copy()
    K[0, 0] *= scale
    K[1, 1] *= scale
    K[0, 2] = K[1, 2] = size / 2.0
    return torch.as_tensor(f.c2w, dtype=torch.float32), torch.as_tensor(K, dtype=torch.float32)


def imitation_section(nerf, teacher, device: torch.device, c2w, K, size: int, sizes: dict) -> dict[str, Any]:
    """Encode one ``size x size`` view with a freshly initialised paper-preset field, decode one click."""
    cfg = imitation_config({"preset": "paper"})
    torch.manual_seed(0)
    field = ImitationModel(
        cfg.field_config(),
        cfg.head_config(False, 0),
        teacher.info.feature_shapes,
        teacher.info.input_size,
        False,
        cfg.max_samples_per_ray,
        cfg.backend,
        device,
    )
    field.eval()
    nerf.eval()
    camera = Camera(c2w.double().numpy(), K.double().numpy(), size, size)  # the float32 values, exactly
    c2w, K = c2w.to(device), K.to(device)
    click = click_grid(size, size, 1)[0]
    last: dict[str, Any] = {}

    def encode():
        last["f"] = render_features(nerf, field, c2w, K, size, size)

    def render_rgb():
        return nerf.render_camera(camera)["rgb"]

    _reset_peak(device)
    w, r = sizes["warmup"], sizes["repeats"]
    enc = time_fn(encode, w, r, device)
    dec = time_fn(lambda: decode_click(teacher, last["f"], click, (size, size)), w, r, device)
    rgb = time_fn(render_rgb, w, max(2, r // 4), device)
    e, d, g = enc["median_ms"], dec["median_ms"], rgb["median_ms"]
    return {
        "view": [size, size],
        "feature_shapes": [list(s) for s in teacher.info.feature_shapes],
        "field": "freshly initialised (paper preset); the encoding cost does not depend on its weights",
        "imitation_encode_ms": round(e, 3),
        "decode_ms": round(d, 3),
        "rgb_render_ms": round(g, 3),
        "click_to_mask_fps": round(1000.0 / (e + d), 2),
        "table1_imitation_fps": round(1000.0 / (g + e + d), 2),
        "peak_memory_gib": _peak_gib(device),
        "runs_ms": {"encode": enc["all"], "decode": dec["all"], "rgb_render": rgb["all"]},
    }


def teacher_section(teacher, device: torch.device, rgb_ms: float, decode_ms: float, sizes: dict) -> dict[str, Any]:
    """The teacher's image encoder on one padded-square input (random pixels: the cost is the same)."""
    side = teacher.info.input_size
    image = image_batch(torch.rand(side, side, 3, device=device))
    _reset_peak(device)
    enc = time_fn(lambda: teacher.encode(image), sizes["warmup"], sizes["repeats"], device)
    e = enc["median_ms"]
    return {
        "teacher": teacher.info.name,
        "untrained": bool(teacher.info.untrained),
        "input": [side, side],
        "teacher_encode_ms": round(e, 3),
        "table1_original_fps": round(1000.0 / (rgb_ms + e + decode_ms), 2),
        "peak_memory_gib": _peak_gib(device),
        "runs_ms": enc["all"],
    }


def guarded(name: str, fn: Callable[[], Any], errors: dict) -> Any:
    """Run one section; a failure is recorded (with its traceback) instead of ending the check."""
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 - a GPU check reports every section it can
        errors[name] = f"{type(e).__name__}: {e}"
        log.error("gpu_check: %s failed:\n%s", name, traceback.format_exc())
        return None


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, type=Path, help="JSON file to write")
    p.add_argument("--scene", type=Path, default=FERN, help="LLFF fern folder (poses_bounds.npy, images_8/)")
    p.add_argument("--device", default="auto")
    p.add_argument("--dry-run", action="store_true", help="tiny sizes, same code path (CI)")
    p.add_argument("--nerf-seconds", type=float, default=None, help="timed training seconds per mode")
    p.add_argument("--skip-compile", action="store_true", help="skip the torch.compile NeRF run")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    sizes = dict(DRY if args.dry_run else FULL)
    if args.nerf_seconds is not None:
        sizes["nerf_seconds"] = args.nerf_seconds
    device = resolve_device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    t_start = time.perf_counter()
    record: dict[str, Any] = {
        "dry_run": args.dry_run,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "tf32": device.type == "cuda",
        "scene": str(args.scene),
        "sizes": sizes,
    }
    errors: dict[str, str] = {}
    scene = prepare_scene(args.scene)
    log.info("gpu_check: %s, %d train views, device %s", args.scene, len(scene.train_frames), record["device"])

    eager = guarded("nerf_eager", lambda: nerf_section(scene, device, sizes, False, warmup_steps=10), errors)
    trainer = None
    if eager is not None:
        record["nerf_eager"], trainer = eager
        log.info("gpu_check: NeRF eager %.2f it/s", record["nerf_eager"]["it_per_s"])
        ev = trainer.evaluate(scene.indices("test")[:1])
        record["nerf_eager"]["test_psnr_after_timed_steps"] = round(ev["psnr"], 3)
    if not args.skip_compile:
        compiled = guarded("nerf_compile", lambda: nerf_section(scene, device, sizes, True, warmup_steps=10), errors)
        if compiled is not None:
            record["nerf_compile"] = compiled[0]
            log.info("gpu_check: NeRF compiled %.2f it/s", record["nerf_compile"]["it_per_s"])
            del compiled
    if trainer is not None:
        teacher = guarded("build_teacher", lambda: build_teacher(sizes["teacher"], None, str(device)), errors)
        if teacher is not None:
            c2w, K = square_view(scene, sizes["view"])
            imitation = guarded(
                "imitation",
                lambda: imitation_section(trainer.model, teacher, device, c2w, K, sizes["view"], sizes),
                errors,
            )
            if imitation is not None:
                record["imitation"] = imitation
                log.info(
                    "gpu_check: imitation encode %.2f ms, click-to-mask %.1f FPS",
                    imitation["imitation_encode_ms"],
                    imitation["click_to_mask_fps"],
                )
                tsec = guarded(
                    "teacher",
                    lambda: teacher_section(teacher, device, imitation["rgb_render_ms"], imitation["decode_ms"], sizes),
                    errors,
                )
                if tsec is not None:
                    record["teacher"] = tsec
                    record["encode_speedup"] = round(tsec["teacher_encode_ms"] / imitation["imitation_encode_ms"], 2)
                    record["fps_speedup"] = round(imitation["table1_imitation_fps"] / tsec["table1_original_fps"], 2)
    peaks = [s.get("peak_memory_gib") for s in record.values() if isinstance(s, dict)]
    record["peak_memory_gib_max"] = max((v for v in peaks if v is not None), default=None)
    record["errors"] = errors
    record["wall_seconds"] = round(time.perf_counter() - t_start, 1)
    atomic_write_json(args.out, record)
    log.info("gpu_check: wrote %s in %.0f s (%d section(s) failed)", args.out, record["wall_seconds"], len(errors))
    return record


if __name__ == "__main__":
    sys.exit(1 if main(sys.argv[1:])["errors"] else 0)
