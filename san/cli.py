"""The ``san`` command line.

Subcommands are entries of :data:`COMMANDS`: a name, a one-line help, a function that adds the
subcommand's arguments to its ``argparse`` parser and a function that runs it and returns the exit
code. Adding a subcommand is adding one :class:`Command` to that list. Heavy imports (torch,
h5py) happen inside the run functions so that ``san --help`` stays fast.

Exit codes: ``0`` success, ``1`` the input is bad (the message names the file), ``2`` usage error.

Commands: ``inspect``, ``segment``, ``view``, ``extract-mesh``, ``train-imitation``, ``build-kernel``
and ``schema``;
the pipeline's own modules have no command-line entry points of their own.

``san inspect FILE`` picks an inspector by file suffix from :data:`INSPECTORS` (``.h5``: feature
cache); other stages add theirs there.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import sys
import textwrap
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence


class CommandError(Exception):
    """A failure to report as ``san <command>: error: <message>`` with exit code 1."""


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    examples: str = ""
    """``--help`` epilog: example command lines, one per line."""


DEVICE_HELP = "auto | cpu | cuda[:N] (default auto: CUDA when present, else CPU)"
"""Help text of every ``--device`` option."""


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
        extra.append(("shuffle+" if ds.shuffle else "") + ds.compression)
    if ds.chunks:
        extra.append("chunks " + "x".join(str(v) for v in ds.chunks))
    line = f"{shape} {ds.dtype}" + (f" ({', '.join(extra)})" if extra else "")
    dims = [d.label for d in ds.dims]
    if any(dims):  # format 2 files describe each dataset (san.features.cache.describe_datasets)
        line += f" [{' x '.join(dims)}]; {ds.attrs.get('description', '')} ({ds.attrs.get('units', '')})"
        if "convention" in ds.attrs:
            line += f"; {ds.attrs['convention']}"
    return line


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
    from san.features.cache import FeatureCacheLockedError

    try:
        print(inspector(path, args.full))
    except FeatureCacheLockedError as e:
        raise CommandError(f"{e}\n{path}: LOCKED (not checked; not known to be bad)") from e
    except (ValueError, OSError) as e:
        raise CommandError(f"{e}\n{path}: INVALID") from e
    return 0


SEGMENT_HELP = "masks (and a segmented mesh) of a trained scene from clicks"


def _teacher_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--teacher", default=None, help="teacher the field imitates (default: the one recorded in the field)"
    )
    p.add_argument("--checkpoint", default=None, help="teacher weights file (default: the one recorded in the field)")


def _teacher(args: argparse.Namespace):
    """The ``--teacher``/``--checkpoint`` choice as a ``TeacherConfig``, or ``None`` (the field's)."""
    if args.teacher is None:
        if args.checkpoint is not None:
            raise CommandError("--checkpoint needs --teacher NAME")
        return None
    from san.teachers import TeacherConfig
    from san.teachers.preflight import check_teacher

    teacher = TeacherConfig(name=args.teacher, checkpoint=args.checkpoint)
    check_teacher(teacher, open_checkpoint=False)  # an unknown name fails before any model loads
    return teacher


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
    p.add_argument(
        "--text",
        default=None,
        metavar="TEXT",
        help="a text (concept) prompt in --view, instead of clicks; needs a teacher with a text head (SAM 3)",
    )
    p.add_argument("--prompts", default=None, help="prompts TSV (instead of --view/--click/--text)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--variant", default="full", help="imitation variant (imitation/{variant}/field.pt)")
    _teacher_arguments(p)
    p.add_argument("--export-mesh", action="store_true", help="also cut the object out of mesh/mesh_normalized.ply")
    p.add_argument("--views-for-mesh", type=int, default=3, help="views voted onto the mesh (default 3)")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)


def run_segment(args: argparse.Namespace) -> int:
    """Run ``san segment``; bad input raises :class:`san.cli.CommandError` (exit code 1)."""
    from san.interaction.prompts import PROMPT_COLUMNS, PromptError
    from san.interaction.session import SessionError
    from san.layout import MissingStageError
    from san.pipeline.segment import segment_scene_folder
    from san.teachers.base import TeacherError
    from san.trained_scene import TeacherMismatchError

    scene_id = args.scene_id or "/".join(Path(args.scene_dir).resolve().parts[-2:])
    if args.prompts is not None:
        if args.click or args.view is not None or args.text is not None:
            raise CommandError("give either --prompts or --view with --click/--text, not both")
        tsv = Path(args.prompts)
    elif args.text is not None:
        if args.view is None or args.click:
            raise CommandError("give --view with --text, and no --click (a text prompt is an object of its own)")
        if not args.text.strip() or "\t" in args.text or "\n" in args.text:
            raise CommandError(f"--text {args.text!r}: give a non-empty text without tabs or newlines")
        lines = ["\t".join([*PROMPT_COLUMNS, "text"]), "\t".join([scene_id, str(args.view), "", "", "", args.text])]
        tsv = Path(args.out) / "prompts.tsv"
        tsv.parent.mkdir(parents=True, exist_ok=True)
        tsv.write_text("\n".join(lines) + "\n")
    else:
        if args.view is None or not args.click:
            raise CommandError("give --view and at least one --click X,Y[,LABEL] or a --text (or --prompts TSV)")
        lines = ["\t".join(PROMPT_COLUMNS)]
        for c in args.click:
            v = c.split(",")
            if len(v) not in (2, 3):
                raise CommandError(f"--click {c!r}: expected X,Y or X,Y,LABEL")
            lines.append("\t".join([scene_id, str(args.view), v[0], v[1], v[2] if len(v) == 3 else "1"]))
        tsv = Path(args.out) / "prompts.tsv"
        tsv.parent.mkdir(parents=True, exist_ok=True)
        tsv.write_text("\n".join(lines) + "\n")
    teacher = _teacher(args)
    try:
        entries = segment_scene_folder(
            tsv,
            scene_id,
            args.scene_dir,
            args.out,
            variant=args.variant,
            export_mesh=args.export_mesh,
            views_for_mesh=args.views_for_mesh,
            teacher=teacher,
            device=args.device,
        )
    except (PromptError, MissingStageError, SessionError, TeacherMismatchError, TeacherError) as e:
        raise CommandError(str(e)) from e
    for e in entries:
        mesh = f", mesh {e['mesh']['segment_faces']} faces" if "mesh" in e else ""
        print(
            f"{e['scene']} view {e['view']}{' ' + e['object'] if e['object'] else ''}: score {e['score']:.3f}, {e['mask_pixels']} px{mesh}"
        )
    print(f"written to {args.out}")
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
    _teacher_arguments(parser)
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)


def _view(args: argparse.Namespace) -> int:
    from san.interaction.viewer import MissingViewerError, run_viewer
    from san.layout import MissingStageError
    from san.trained_scene import TeacherMismatchError

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
            teacher=_teacher(args),
        )
    except (MissingStageError, MissingViewerError, TeacherMismatchError) as e:
        raise CommandError(str(e)) from e
    return 0


def parse_overrides(items: Sequence[str], option: str = "--set") -> dict:
    """``KEY=JSON`` items (a repeatable ``--set``) -> ``{key: value}``; raises :class:`CommandError`
    naming a malformed item."""
    overrides: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CommandError(f"{option} {item!r}: expected KEY=JSON, e.g. steps=200")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as e:
            raise CommandError(
                f"{option} {item!r}: the value is not JSON ({e.msg}); quote strings, e.g. name='\"x\"'"
            ) from e
        overrides[key] = parsed
    return overrides


def _extract_mesh_arguments(p: argparse.ArgumentParser) -> None:
    p.description = "Rule extract_mesh by hand: trained NeRF -> coloured triangle mesh (mesh.ply, mesh.glb, mesh_normalized.ply, mesh.json)."
    p.add_argument("--model", required=True, help="saved NeRF (nerf/model.pt)")
    p.add_argument("--cameras", required=True, help="poses/cameras.json")
    p.add_argument("--out", required=True, help="output folder (results/{dataset}/{scene}/mesh)")
    p.add_argument("--preset", default="cpu", help="mesh config preset (default cpu)")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=JSON", help="override a mesh config key, e.g. resolution=256"
    )
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--ground-truth", default=None, help="folder with scene_gt.json and meshes/ (demo scene)")


def _extract_mesh(args: argparse.Namespace) -> int:
    from san.config import ConfigError
    from san.mesh.extract import mesh_config
    from san.pipeline.extract_mesh import extract_mesh

    try:
        config = mesh_config({"preset": args.preset, **parse_overrides(args.set)})
    except (ConfigError, ValueError) as e:
        raise CommandError(str(e)) from e
    record = extract_mesh(args.model, args.cameras, args.out, config, args.device, args.ground_truth)
    print(
        json.dumps(
            {k: record[k] for k in ("faces", "vertices", "counts", "timings_s")}
            | ({"chamfer": record["chamfer"]} if "chamfer" in record else {}),
            indent=2,
        )
    )
    return 0


def _train_imitation_arguments(p: argparse.ArgumentParser) -> None:
    p.description = "Rule train_imitation by hand: learn the feature field that imitates the teacher (field.pt, train_stats.json, training_curve.csv)."
    p.add_argument("--model", required=True, help="nerf/model.pt")
    p.add_argument("--cameras", required=True, help="poses/cameras.json")
    p.add_argument("--cache", required=True, help="features/{teacher}.h5")
    p.add_argument("--out", required=True, help="output folder (results/{dataset}/{scene}/imitation/{variant})")
    p.add_argument("--variant", default="full", help="imitation variant (default full)")
    p.add_argument("--mesh", default=None, help="mesh/mesh_normalized.ply (mesh variant)")
    p.add_argument("--teacher", default="sam_untrained_tiny", help="teacher of the cache (default sam_untrained_tiny)")
    p.add_argument("--teacher-checkpoint", default=None, help="teacher weights file (default: none)")
    p.add_argument("--preset", default="cpu", help="imitation config preset (default cpu)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help="override an imitation config key, e.g. steps=200",
    )
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")


def _train_imitation(args: argparse.Namespace) -> int:
    from san.config import ConfigError
    from san.imitation.config import imitation_config
    from san.pipeline.train_imitation import train_imitation
    from san.teachers import TeacherConfig

    try:
        config = imitation_config({"preset": args.preset, **parse_overrides(args.set)})
    except (ConfigError, ValueError) as e:
        raise CommandError(str(e)) from e
    out = Path(args.out)
    stats = train_imitation(
        args.model,
        args.cameras,
        args.cache,
        field=out / "field.pt",
        curve=out / "training_curve.csv",
        stats=out / "train_stats.json",
        config=config,
        variant=args.variant,
        teacher_config=TeacherConfig(args.teacher, args.teacher_checkpoint),
        mesh_path=args.mesh,
        device=args.device,
        seed=args.seed,
    )
    print(json.dumps({k: stats[k] for k in ("steps", "teacher_calls", "wall_s", "quality")}, indent=2, default=str))
    return 0


def _build_kernel(args: argparse.Namespace) -> int:
    import time

    from san.encodings.hashgrid import CPU_KERNEL_SOURCE, cpu_kernel_error, load_cpu_kernel

    start = time.perf_counter()
    if load_cpu_kernel(verbose=args.verbose_build) is None:
        raise CommandError(
            f"{CPU_KERNEL_SOURCE}: did not build ({cpu_kernel_error()}); the pure-torch hash grid is used instead"
        )
    print(f"C++ CPU hash-grid kernel ready ({time.perf_counter() - start:.1f} s): backend 'auto' uses it on the CPU")
    return 0


def _schema(args: argparse.Namespace) -> int:
    from san.pipeline.settings import schema_yaml

    sys.stdout.write(schema_yaml())
    return 0


COMMANDS: list[Command] = [
    Command(
        "inspect",
        "summarise and validate an artifact (feature cache .h5)",
        _inspect_arguments,
        _inspect,
        """\
  san inspect results/demo/demo/features/sam_tiny_procedural.h5
  san inspect --full results/llff/fern/features/sam_tiny_procedural.h5   # every view""",
    ),
    Command(
        "segment",
        SEGMENT_HELP,
        add_segment_arguments,
        run_segment,
        """\
  # two clicks on view 0 (the second one negative), and cut the object out of the mesh
  san segment --scene-dir results/demo/demo --view 0 --click 133.5,110.5 --click 60.5,80.5,0 \\
      --out results/demo/demo/segmentation/manual --export-mesh
  # a text prompt (teachers with a text head: SAM 3), in view 0 and voted onto the mesh
  san segment --scene-dir results_sam3/demo/demo --view 0 --text "a yellow bulldozer" \\
      --out results_sam3/demo/demo/segmentation/text --export-mesh
  # every object of a prompts TSV, on the second GPU
  san segment --scene-dir results/demo/demo --prompts config/demo_prompts.tsv \\
      --out results/demo/demo/segmentation/batch --device cuda:1""",
    ),
    Command(
        "view",
        "interactive web viewer of a trained scene: click, see the mask, export (needs san[viewer])",
        _view_arguments,
        _view,
        """\
  san view results/demo/demo                       # then open http://localhost:8080
  san view results/demo/demo --variant no_aug --port 8081 --device cpu
  # on a cluster node: listen there, reach it with ssh -L 8080:NODE:8080
  san view results/llff/fern --host 0.0.0.0 --device cuda""",
    ),
    Command(
        "extract-mesh",
        "trained NeRF -> coloured mesh (rule extract_mesh by hand)",
        _extract_mesh_arguments,
        _extract_mesh,
        """\
  san extract-mesh --model results/demo/demo/nerf/model.pt --cameras results/demo/demo/poses/cameras.json \\
      --out /tmp/demo_mesh --set resolution=256 --device cuda""",
    ),
    Command(
        "train-imitation",
        "train the imitation feature field (rule train_imitation by hand)",
        _train_imitation_arguments,
        _train_imitation,
        """\
  san train-imitation --model results/demo/demo/nerf/model.pt --cameras results/demo/demo/poses/cameras.json \\
      --cache results/demo/demo/features/sam_untrained_tiny.h5 --teacher sam_untrained_tiny \\
      --out /tmp/demo_imitation --set steps=200 --device cpu""",
    ),
    Command(
        "build-kernel",
        "compile the C++ CPU hash-grid kernel now (once per machine; make install runs it)",
        lambda p: p.add_argument(
            "--verbose-build", action="store_true", help="show the compiler's command lines and output"
        ),
        _build_kernel,
        """\
  san build-kernel
  san build-kernel --verbose-build   # why did it not build?""",
    ),
    Command(
        "schema",
        "print the JSON schema of config.yaml (as YAML; workflow/schemas/config.schema.yaml)",
        lambda p: None,
        _schema,
        """\
  san schema > workflow/schemas/config.schema.yaml""",
    ),
]


def _version() -> str:
    try:
        return importlib.metadata.version("san")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _add_verbosity(parser: argparse.ArgumentParser, default) -> None:
    """``-q/--quiet`` and ``-v/--verbose``, accepted before or after the command (the command's own
    copies default to ``SUPPRESS`` so that they do not undo the ones given before it)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-q", "--quiet", action="store_true", default=default, help="log warnings and errors only")
    group.add_argument("-v", "--verbose", action="store_true", default=default, help="log debug lines too")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="san",
        description="Segment-Anything NeRF with feature imitation. Steps are logged to stderr (INFO; -q: "
        "warnings only, -v: debug); results go to stdout and to files. `san COMMAND --help` shows examples.",
    )
    parser.add_argument("--version", action="version", version=f"san {_version()}")
    _add_verbosity(parser, False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for cmd in COMMANDS:
        p = sub.add_parser(
            cmd.name,
            help=cmd.help,
            description=cmd.help,
            epilog="examples:\n" + cmd.examples if cmd.examples else None,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        cmd.add_arguments(p)
        p.description = textwrap.fill(p.description or "", width=100)  # the raw formatter keeps the examples as typed
        _add_verbosity(p, argparse.SUPPRESS)
        p.set_defaults(_run=cmd.run)
    return parser


def _project_errors() -> tuple[type[BaseException], ...]:
    """The exception types of bad input that ``san`` reports as one line (imported lazily)."""
    from san.errors import project_errors

    return project_errors()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``san`` console script; returns the exit code.

    Logging is set up here, once for every command (stderr; INFO, ``-q`` WARNING, ``-v`` DEBUG).
    Bad input (:class:`CommandError` and the project's own errors, :func:`san.errors.project_errors`)
    is printed as ``san <command>: error: <message>`` with exit code 1; ``SAN_TRACEBACK=1`` re-raises
    it with its traceback.
    """
    import logging
    import os

    from san.utils.progress import setup_logging

    args = build_parser().parse_args(argv)
    setup_logging(level=logging.WARNING if args.quiet else logging.DEBUG if args.verbose else logging.INFO)
    try:
        return int(args._run(args))
    except CommandError as e:
        print(f"san {args.command}: error: {e}", file=sys.stderr)
        return 1
    except Exception as e:
        if os.environ.get("SAN_TRACEBACK") or not isinstance(e, _project_errors()):
            raise
        print(f"san {args.command}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
