"""A deterministic, labelled stand-in for an LLFF scene's ``images_4`` folder, made from ``images_8``.

``config/paper_smoke.yaml`` runs fern at the paper's ``images_4`` size (1008x756), but the
development data (``../shared/data/llff_fern``) holds only ``images_8`` (504x378). This script
writes, OUTSIDE the repository, a copy of the scene with

* ``images_4/``: every ``--every``-th image of ``images_8`` (names kept), upsampled 2x with PIL's
  bicubic filter to 1008x756: the real shape, NOT the real detail (no information beyond images_8);
* ``poses_bounds.npy``: the rows of those images (LLFF intrinsics are rescaled to the images on
  disk, so the poses are unchanged);
* ``PROVENANCE.json``: source folder, filter, factor, the images kept and their SHA-256, saying
  ``"upsampled_from": "images_8"``.

The same inputs give byte-identical outputs. Usage::

    python scripts/make_upsampled_llff.py --src ../shared/data/llff_fern/fern \\
        --out ../paper_smoke_data/fern --every 5
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

FACTOR = 2


def make_upsampled(src: Path, out: Path, every: int = 1, factor: int = FACTOR) -> dict:
    """Write the upsampled copy (module docstring) and return its provenance record.

    Raises:
        FileNotFoundError: ``src`` lacks ``poses_bounds.npy`` or ``images_8``.
        ValueError: the row count of ``poses_bounds.npy`` differs from the image count, or ``every < 1``.
    """
    if every < 1:
        raise ValueError(f"--every must be >= 1, got {every}")
    poses_file, folder = src / "poses_bounds.npy", src / "images_8"
    for p in (poses_file, folder):
        if not p.exists():
            raise FileNotFoundError(f"{p}: not found (need an LLFF scene with poses_bounds.npy and images_8)")
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    rows = np.load(poses_file)
    if len(rows) != len(images):
        raise ValueError(f"{poses_file}: {len(rows)} rows but {len(images)} images in {folder}")
    keep = list(range(0, len(images), every))
    (out / "images_4").mkdir(parents=True, exist_ok=True)
    kept = []
    for i in keep:
        with Image.open(images[i]) as im:
            big = im.convert("RGB").resize((im.width * factor, im.height * factor), Image.BICUBIC)
        target = out / "images_4" / (images[i].stem + ".png")
        big.save(target, format="PNG")
        kept.append(
            {"image": target.name, "size": list(big.size), "sha256": hashlib.sha256(target.read_bytes()).hexdigest()}
        )
    np.save(out / "poses_bounds.npy", rows[keep])
    record = {
        "upsampled_from": "images_8",
        "note": "images_4 here is images_8 upsampled: the paper's image SIZE, not its detail",
        "source": str(src.resolve()),
        "filter": "PIL bicubic",
        "factor": factor,
        "every": every,
        "images": kept,
    }
    (out / "PROVENANCE.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--src", type=Path, required=True, help="LLFF scene folder with poses_bounds.npy and images_8")
    p.add_argument("--out", type=Path, required=True, help="output scene folder (outside the repository)")
    p.add_argument("--every", type=int, default=1, help="keep every N-th image (few views for a smoke run)")
    args = p.parse_args(argv)
    record = make_upsampled(args.src, args.out, args.every)
    print(f"{args.out}: {len(record['images'])} images upsampled {FACTOR}x from images_8")
    return record


if __name__ == "__main__":
    main(sys.argv[1:])
