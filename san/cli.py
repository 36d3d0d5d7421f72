"""The ``san`` command line.

Subcommands are entries of :data:`COMMANDS`: a name, a one-line help, a function that adds the
subcommand's arguments to its ``argparse`` parser and a function that runs it and returns the exit
code. Adding a subcommand is adding one :class:`Command` to that list. Heavy imports (torch,
h5py) happen inside the run functions so that ``san --help`` stays fast.

Exit codes: ``0`` success, ``1`` the input is bad (the message names the file), ``2`` usage error.

``san inspect FILE`` picks an inspector by file suffix from :data:`INSPECTORS` (``.h5``: feature
cache); other stages add theirs there.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from san.pipeline.segment import SEGMENT_HELP, add_segment_arguments, run_segment


class CommandError(Exception):
    """A failure to report as ``san <command>: error: <message>`` with exit code 1."""


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def _size(nbytes: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if nbytes < 1024 or unit == "GB":
            return f"{nbytes:.1f} {unit}" if unit != "B" else f"{int(nbytes)} B"
        nbytes /= 1024
    return f"{nbytes:.1f} GB"


def _dataset_line(ds) -> str:
    shape = "x".join(str(v) for v in ds.shape)
    extra = []
    if ds.compression:
        extra.append(ds.compression)
    if ds.chunks:
        extra.append("chunks " + "x".join(str(v) for v in ds.chunks))
    return f"{shape} {ds.dtype}" + (f" ({', '.join(extra)})" if extra else "")


def inspect_feature_cache(path: Path, full: bool) -> str:
    """Readable summary of a feature cache after validating it (raises ``FeatureCacheError``)."""
    from san.features.cache import open_feature_cache

    with open_feature_cache(path) as cache:
        cache.validate(full=full)
        m = cache.meta
        n_aug = int(cache.is_augmented.sum())
        sizes = Counter(f"{w}x{h}" for h, w in cache.image_hw.tolist())
        rows = [
            ("file", f"{path} ({_size(path.stat().st_size)} on disk)"),
            (
                "teacher",
                m.teacher
                + (
                    "  [UNTRAINED: random weights, features are meaningless]"
                    if m.untrained
                    else "  [trained on procedural scenes, not SAM]"
                    if m.teacher_kind == "procedural"
                    else ""
                ),
            ),
            ("untrained", str(m.untrained)),
            ("teacher kind", m.teacher_kind),
            ("checkpoint", m.checkpoint_sha256 and f"sha256 {m.checkpoint_sha256}" or "none"),
            ("nerf", f"sha256 {m.nerf_digest}"),
            ("format", f"version {m.format_version}, written {m.created} by san {m.san_version}"),
            ("views", f"{cache.num_views} ({cache.num_views - n_aug} train, {n_aug} augmented)"),
            (
                "render size",
                f"{m.render_size} px longest side; images (WxH): "
                + ", ".join(f"{k} x{v}" for k, v in sorted(sizes.items())),
            ),
            ("teacher input", f"{m.input_size} px"),
        ]
        for name in ("rgb", "c2w", "K", "image_hw", "is_augmented", "frame_index"):
            rows.append((name, _dataset_line(cache.file[name])))
        stats = cache.feature_stats(cache.sample_indices(full))
        for i, st in enumerate(stats):
            valid = Counter(f"{h}x{w}" for h, w in cache.valid_hw[i].tolist())
            rows.append((f"features/{i}", _dataset_line(cache.file[f"features/{i}"])))
            rows.append(("", "valid hxw: " + ", ".join(f"{k} x{v}" for k, v in sorted(valid.items()))))
            rows.append(("", f"mean {st['mean']:.4g}  std {st['std']:.4g}  min {st['min']:.4g}  max {st['max']:.4g}"))
        if m.timing:
            render, encode = (float(m.timing.get(k, float("nan"))) for k in ("render_s_per_view", "encode_s_per_view"))
            rows.append(
                (
                    "timing",
                    f"render {render:.3f} s/view, encode {encode:.3f} s/view on {m.timing.get('teacher_device', '?')}",
                )
            )
        checked = "every view" if full else f"{len(cache.sample_indices())} sampled views (--full for all)"
        rows.append(("validation", f"OK ({checked})"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


INSPECTORS: dict[str, Callable[[Path, bool], str]] = {".h5": inspect_feature_cache, ".hdf5": inspect_feature_cache}
"""File suffix -> ``inspector(path, full) -> summary text`` (raises ``ValueError`` on a bad file)."""


def _inspect_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file", type=Path, help="artifact to summarise and validate (" + ", ".join(sorted(INSPECTORS)) + ")"
    )
    parser.add_argument("--full", action="store_true", help="validate every view, not a sample")


def _inspect(args: argparse.Namespace) -> int:
    path: Path = args.file
    inspector = INSPECTORS.get(path.suffix.lower())
    if inspector is None:
        raise CommandError(
            f"{path}: don't know how to inspect '{path.suffix}' files (known: {', '.join(sorted(INSPECTORS))})"
        )
    if not path.exists():
        raise CommandError(f"{path}: no such file")
    try:
        print(inspector(path, args.full))
    except (ValueError, OSError) as e:
        raise CommandError(f"{e}\n{path}: INVALID") from e
    return 0


def _view_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Serve an interactive web viewer (viser) of a trained scene: the mesh and training cameras, clicks on the mesh, "
        "the rendered view with its live mask, and export of the segmented mesh. Needs: pip install 'san[viewer]'."
    )
    parser.add_argument("scene_dir", type=Path, help="trained scene folder results/{dataset}/{scene}")
    parser.add_argument("--variant", default="full", help="imitation variant (imitation/{variant}/field.pt)")
    parser.add_argument("--port", type=int, default=8080, help="port of the web server (default 8080)")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: reach it over ssh -L)"
    )
    parser.add_argument(
        "--render-size", type=int, default=256, help="longest side of the rendered views in pixels (default 256)"
    )
    parser.add_argument(
        "--mesh",
        type=Path,
        default=None,
        help="mesh in the normalised frame (default SCENE_DIR/mesh/mesh_normalized.ply)",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="folder of the exported meshes (default SCENE_DIR/segment_viewer)"
    )
    parser.add_argument("--device", default="auto")


def _view(args: argparse.Namespace) -> int:
    from san.interaction.viewer import MissingViewerError, run_viewer
    from san.pipeline.segment import MissingStageError

    if args.render_size < 1:
        raise CommandError(f"--render-size {args.render_size} must be positive")
    if args.mesh is not None and not args.mesh.is_file():
        raise CommandError(f"--mesh {args.mesh}: no such file")
    try:
        run_viewer(
            args.scene_dir,
            args.variant,
            mesh=args.mesh,
            port=args.port,
            render_size=args.render_size,
            out_dir=args.out,
            device=args.device,
            host=args.host,
        )
    except (MissingStageError, MissingViewerError) as e:
        raise CommandError(str(e)) from e
    return 0


COMMANDS: list[Command] = [
    Command("inspect", "summarise and validate an artifact (feature cache .h5)", _inspect_arguments, _inspect),
    Command("segment", SEGMENT_HELP, add_segment_arguments, run_segment),
    Command(
        "view",
        "interactive web viewer of a trained scene: click, see the mask, export (needs san[viewer])",
        _view_arguments,
        _view,
    ),
]


def _version() -> str:
    try:
        return importlib.metadata.version("san")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="san", description="Segment-Anything NeRF with feature imitation")
    parser.add_argument("--version", action="version", version=f"san {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for cmd in COMMANDS:
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help)
        cmd.add_arguments(p)
        p.set_defaults(_run=cmd.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``san`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args))
    except CommandError as e:
        print(f"san {args.command}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
