"""The HDF5 feature cache: NeRF renderings, their cameras, and the teacher's features of them.

Written once by rule ``cache_features`` (:func:`san.pipeline.cache_features.cache_features`), read
lazily, one view at a time, by the imitation stage. ``N`` views, ``S = render_size``, ``M`` feature
maps of shapes ``(C_i, h_i, w_i)`` (SAM: ``M = 1``, ``256x64x64``)::

    rgb            N x S x S x 3  uint8    the rendering the teacher saw, top-left image_hw, zero pad
    image_hw       N x 2          int32    (height, width) of each rendering (pipeline: longest side S)
    c2w            N x 4 x 4      float32  OpenCV camera-to-world, normalised scene frame
    K              N x 3 x 3      float32  intrinsics of the rendering (pixel centres at +0.5)
    is_augmented   N              bool     True for interpolated cameras, False for training views
    frame_index    N              int32    index into the training cameras, -1 when augmented
    features/{i}   N x C_i x h_i x w_i float16  teacher map i over the padded square input, one
                                           view per chunk, compressed (:data:`COMPRESSIONS`)
    valid_hw/{i}   N x 2          int32    top-left (h, w) cells of map i that cover the image

Attributes (``File.attrs``): ``format_version``, ``teacher`` (registry name), ``untrained``
(bool: random-weight teacher, features meaningless), ``teacher_kind`` (``sam``, ``procedural``
= trained on procedural scenes, or ``untrained``; caches written before it existed read as
``untrained``/``sam`` from ``untrained``), ``teacher_label`` (its readable form), ``checkpoint_sha256`` (``""`` when none),
``input_size`` (teacher input side, 1024 for SAM), ``render_size`` (``S``), ``feature_shapes``
(``M x 3``), ``nerf_digest`` (SHA-256 of the NeRF ``model.pt`` rendered), ``created`` (UTC ISO
8601), ``san_version``, ``settings`` (JSON of the writer's configuration) and, when given,
``timing`` (JSON). From format version 2 the file describes itself to generic HDF5 tools
(``h5ls -rvd``, ``h5dump -A``, HDFView): ``/`` also carries ``title`` and ``conventions``, and
every dataset carries ``description``, ``units`` (``"1"`` for dimensionless values) and, where a
frame or convention applies, ``convention``; every dimension is labelled (``Dataset.dims[k].label``:
``view``, ``y``, ``x``, ``channel``, ...). Version 1 files (the same layout without those
attributes) are still read; other versions are refused naming theirs.

Files are written atomically (temporary file beside the target, then ``os.replace``): a file at
the final path is always complete. Readers still check structure on open and content on
:meth:`FeatureCache.validate`, and every error names the file.
"""

from __future__ import annotations

import contextlib
import datetime
import importlib.metadata
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import h5py
import numpy as np

from san.cameras import orthonormality_error
from san.features.config import COMPRESSION_FILTERS, COMPRESSIONS, DEFAULT_COMPRESSION
from san.teachers.base import TeacherInfo, valid_feature_hw
from san.utils.io import atomic_path

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
"""Version 2 added the per-dataset attributes and dimension labels; the layout is version 1's."""

_VIEW_DATASETS = ("rgb", "image_hw", "c2w", "K", "is_augmented", "frame_index")
_ATTRS = (
    "format_version",
    "teacher",
    "untrained",
    "checkpoint_sha256",
    "input_size",
    "render_size",
    "feature_shapes",
    "nerf_digest",
    "created",
    "san_version",
    "settings",
)


class FeatureCacheError(ValueError):
    """A missing, truncated or inconsistent feature cache; the message names the file."""


class FeatureCacheLockedError(FeatureCacheError):
    """The cache is locked by another process writing it (HDF5 file locking): not a damaged file."""


def san_version() -> str:
    try:
        return importlib.metadata.version("san")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True)
class FeatureCacheMeta:
    """The file attributes, typed (see the module docstring)."""

    format_version: int
    teacher: str
    untrained: bool
    checkpoint_sha256: str | None
    input_size: int
    render_size: int
    feature_shapes: tuple[tuple[int, int, int], ...]
    nerf_digest: str
    created: str
    san_version: str
    settings: dict
    timing: dict | None = None
    teacher_kind: str = "sam"
    teacher_label: str = ""


@dataclass(frozen=True)
class CachedView:
    """One cached view.

    Attributes:
        index: position in the file.
        rgb: ``HxWx3`` uint8 rendering (cropped to its ``image_hw``).
        c2w: ``4x4`` float32; ``K``: ``3x3`` float32; ``width``, ``height``: image size.
        features: per map, ``CxHxW`` float16 over the padded square input (``h x w`` cells).
        valid_hw: per map, the top-left ``(h, w)`` cells that cover the image.
        is_augmented: interpolated camera (``True``) or training view.
        frame_index: index into the training cameras, ``-1`` for augmented views.
    """

    index: int
    rgb: np.ndarray
    c2w: np.ndarray
    K: np.ndarray
    width: int
    height: int
    features: list[np.ndarray]
    valid_hw: list[tuple[int, int]]
    is_augmented: bool
    frame_index: int


def _compression_kwargs(compression: str) -> dict:
    if compression not in COMPRESSIONS:
        raise FeatureCacheError(f"compression {compression!r} is not one of {COMPRESSIONS}")
    return dict(COMPRESSION_FILTERS[compression])


CONVENTIONS = (
    "Cameras: c2w is camera-to-world with OpenCV axes (+x right, +y down, +z forward, the camera "
    "looks along +z) in the normalised scene frame of poses/cameras.json (its 'normalization' maps "
    "it back to the input frame). K is the pinhole intrinsics of the rendering in pixels, pixel "
    "centres at +0.5: pixel (u, v) = (fx X/Z + cx, fy Y/Z + cy), the top-left pixel spans [0, 1]. "
    "Images are row-major (y down), channels last for rgb and first for features."
)


def _set_attrs(
    ds: h5py.Dataset, dims: Sequence[str], description: str, units: str, convention: str | None = None
) -> None:
    ds.attrs["description"] = description
    ds.attrs["units"] = units
    if convention:
        ds.attrs["convention"] = convention
    for k, label in enumerate(dims):
        ds.dims[k].label = label


def _backbone_output(teacher: str, index: int, shape: Sequence[int], input_size: int) -> str:
    c, h, w = (int(v) for v in shape)
    if teacher.startswith("sam3"):
        from san.teachers.sam3 import MAP_MEANING  # a table only: the optional sam3 package is not imported

        what = f"SAM 3 backbone map {index} of {len(MAP_MEANING)}: {MAP_MEANING[index]}"
    elif teacher.startswith("sam"):
        what = "SAM image encoder output (ViT + neck): the image embedding SAM's mask decoder reads"
    else:
        what = f"output {index} of the teacher's backbone (Teacher.embed(x)[{index}])"
    return f"{what}; {c} channels on a {h} x {w} grid over the padded {input_size} x {input_size} input (stride {input_size / h:g} px)"


def describe_datasets(file: h5py.File, info: TeacherInfo, render_size: int) -> None:
    """Write the format-2 attributes (description, units, convention, dimension labels) of every
    dataset and of ``/`` (see the module docstring)."""
    s, n_in = int(render_size), int(info.input_size)
    file.attrs["title"] = "san feature cache: NeRF renderings, their cameras and the teacher's features of them"
    file.attrs["conventions"] = CONVENTIONS
    _set_attrs(
        file["rgb"],
        ("view", "y", "x", "channel"),
        f"NeRF rendering of each view as the teacher saw it, RGB, zero-padded at the bottom and right to {s} x {s}; "
        "the valid region of view i is rgb[i, :image_hw[i, 0], :image_hw[i, 1]]",
        "8-bit sRGB (0-255)",
        f"the teacher resized it (longest side to {n_in} px) and zero-padded it to its {n_in} x {n_in} square input",
    )
    _set_attrs(file["image_hw"], ("view", "hw"), "(height, width) of each rendering: the valid region of rgb", "pixels")
    _set_attrs(
        file["c2w"],
        ("view", "row", "col"),
        "camera-to-world transform of each view (4 x 4, last row 0 0 0 1)",
        "normalised scene units (translation); rotation dimensionless",
        "OpenCV camera axes (+x right, +y down, +z forward), normalised scene frame of poses/cameras.json",
    )
    _set_attrs(
        file["K"],
        ("view", "row", "col"),
        "pinhole intrinsics [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] of the image_hw rendering",
        "pixels",
        "pixel centres at +0.5: the top-left pixel spans [0, 1] x [0, 1]; u = fx X/Z + cx, v = fy Y/Z + cy",
    )
    _set_attrs(file["is_augmented"], ("view",), "true: an interpolated (augmented) camera; false: a training view", "1")
    _set_attrs(
        file["frame_index"],
        ("view",),
        "index of the training camera in poses/cameras.json, -1 for augmented views",
        "1",
    )
    for i, shape in enumerate(info.feature_shapes):
        ds = file[f"features/{i}"]
        _set_attrs(
            ds,
            ("view", "channel", "y", "x"),
            f"teacher feature map {i} of each view, C x h x w = {' x '.join(str(v) for v in shape)}, over the padded square input; "
            f"only the top-left valid_hw/{i} cells see the image",
            "teacher feature units (dimensionless), stored as float16",
            "cell (y, x) covers input pixels [y, y+1) x [x, x+1) times the stride",
        )
        ds.attrs["backbone_output"] = _backbone_output(info.name, i, shape, n_in)
        ds.attrs["untrained_teacher"] = bool(info.untrained)
        _set_attrs(
            file[f"valid_hw/{i}"],
            ("view", "hw"),
            f"(h, w): the top-left cells of features/{i} that cover the image",
            "feature cells",
        )


def open_error(path: Path, error: OSError) -> "FeatureCacheError":
    """The error for an HDF5 file that does not open: held by another process (HDF5's file lock;
    the file may be good) told apart from a truncated or corrupt file."""
    text = str(error)
    if isinstance(error, BlockingIOError) or getattr(error, "errno", None) in (11, 35) or "unable to lock file" in text:
        return FeatureCacheLockedError(
            f"{path}: locked by another process that has it open for writing (HDF5 file lock); the file is not "
            f"necessarily damaged: wait for that process (a running cache_features job?) or stop it, then retry ({text})"
        )
    if "truncated file" in text:
        return FeatureCacheError(
            f"{path}: cannot open as HDF5, the file is truncated ({text}); delete it and re-run rule cache_features"
        )
    return FeatureCacheError(f"{path}: cannot open as HDF5, the file is truncated or corrupt ({text})")


class FeatureCacheWriter:
    """Fills a freshly created cache view by view; made by :func:`create_feature_cache`."""

    def __init__(
        self, file: h5py.File, path: Path, num_views: int, render_size: int, info: TeacherInfo, compression: str
    ):
        self.file, self.path, self.num_views, self.render_size, self.info = file, path, num_views, render_size, info
        self.written = np.zeros(num_views, dtype=bool)
        kw = _compression_kwargs(compression)
        n, s = num_views, render_size
        file.create_dataset("rgb", (n, s, s, 3), dtype=np.uint8, chunks=(1, s, s, 3), **kw)
        file.create_dataset("image_hw", (n, 2), dtype=np.int32)
        file.create_dataset("c2w", (n, 4, 4), dtype=np.float32)
        file.create_dataset("K", (n, 3, 3), dtype=np.float32)
        file.create_dataset("is_augmented", (n,), dtype=bool)
        file.create_dataset("frame_index", (n,), dtype=np.int32)
        for i, shape in enumerate(info.feature_shapes):
            file.create_dataset(f"features/{i}", (n, *shape), dtype=np.float16, chunks=(1, *shape), **kw)
            file.create_dataset(f"valid_hw/{i}", (n, 2), dtype=np.int32)
        describe_datasets(file, info, render_size)

    def write(
        self,
        index: int,
        rgb: np.ndarray,
        c2w: np.ndarray,
        K: np.ndarray,
        features: Sequence[np.ndarray],
        is_augmented: bool,
        frame_index: int = -1,
    ) -> None:
        """Store view ``index``.

        Args:
            rgb: ``HxWx3`` uint8 rendering, ``max(H, W) <= render_size``.
            c2w: ``4x4``; K: ``3x3`` (of the ``HxW`` rendering).
            features: one ``CxHxW`` array per teacher map (any float dtype; stored as float16).
            is_augmented: interpolated camera or training view.
            frame_index: index into the training cameras (``-1`` for augmented views).
        """
        where = f"{self.path}: view {index}"
        if not 0 <= index < self.num_views:
            raise FeatureCacheError(f"{where}: index out of range [0, {self.num_views})")
        rgb = np.asarray(rgb)
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise FeatureCacheError(f"{where}: rgb must be HxWx3 uint8, got {rgb.shape} {rgb.dtype}")
        h, w = rgb.shape[:2]
        if max(h, w) > self.render_size:
            raise FeatureCacheError(f"{where}: rgb {h}x{w} exceeds render_size {self.render_size}")
        if len(features) != len(self.info.feature_shapes):
            raise FeatureCacheError(
                f"{where}: {len(features)} feature maps, teacher has {len(self.info.feature_shapes)}"
            )
        padded = np.zeros((self.render_size, self.render_size, 3), dtype=np.uint8)
        padded[:h, :w] = rgb
        self.file["rgb"][index] = padded
        self.file["image_hw"][index] = (h, w)
        self.file["c2w"][index] = np.asarray(c2w, dtype=np.float32).reshape(4, 4)
        self.file["K"][index] = np.asarray(K, dtype=np.float32).reshape(3, 3)
        self.file["is_augmented"][index] = bool(is_augmented)
        self.file["frame_index"][index] = int(frame_index)
        for i, (f, shape) in enumerate(zip(features, self.info.feature_shapes)):
            f = np.asarray(f)
            if f.shape != shape:
                raise FeatureCacheError(f"{where}: feature map {i} has shape {f.shape}, expected {shape}")
            f16 = f.astype(np.float16)
            if not np.isfinite(f16).all():
                raise FeatureCacheError(f"{where}: feature map {i} has NaN/inf values (or overflows float16)")
            self.file[f"features/{i}"][index] = f16
            self.file[f"valid_hw/{i}"][index] = valid_feature_hw((h, w), self.info.input_size, shape[1:])
        self.written[index] = True

    def set_json_attr(self, name: str, value: Any) -> None:
        """Store a JSON-serialisable ``value`` as a string attribute (for example ``timing``)."""
        self.file.attrs[name] = json.dumps(value, allow_nan=False)


@contextlib.contextmanager
def create_feature_cache(
    path: str | os.PathLike,
    num_views: int,
    render_size: int,
    teacher: TeacherInfo,
    nerf_digest: str,
    compression: str = DEFAULT_COMPRESSION,
    settings: Mapping[str, Any] | None = None,
) -> Iterator[FeatureCacheWriter]:
    """Create a cache for ``num_views`` views atomically; every view must be written in the block.

    Args:
        path: target ``.h5`` file (replaced only when the block succeeds).
        num_views: number of views ``N``.
        render_size: ``S``, the longest side of every rendering.
        teacher: the teacher's :class:`TeacherInfo` (name, checkpoint digest, shapes, untrained).
        nerf_digest: SHA-256 of the NeRF model file the renderings come from.
        compression: a name of :data:`COMPRESSIONS` (default ``shuffle_gzip``, chosen by measurement).
        settings: configuration to record as JSON (attribute ``settings``).
    """
    path = Path(path)
    if num_views < 1:
        raise FeatureCacheError(f"{path}: a feature cache needs at least one view")
    _compression_kwargs(compression)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["format_version"] = FORMAT_VERSION
            f.attrs["teacher"] = teacher.name
            f.attrs["untrained"] = bool(teacher.untrained)
            f.attrs["teacher_kind"] = str(teacher.kind)
            f.attrs["teacher_label"] = str(teacher.label)
            f.attrs["checkpoint_sha256"] = teacher.checkpoint_sha256 or ""
            f.attrs["input_size"] = int(teacher.input_size)
            f.attrs["render_size"] = int(render_size)
            f.attrs["feature_shapes"] = np.asarray(teacher.feature_shapes, dtype=np.int64)
            f.attrs["nerf_digest"] = str(nerf_digest)
            f.attrs["created"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
            f.attrs["san_version"] = san_version()
            f.attrs["settings"] = json.dumps(dict(settings or {}), allow_nan=False)
            writer = FeatureCacheWriter(f, path, num_views, int(render_size), teacher, compression)
            yield writer
            missing = np.flatnonzero(~writer.written)
            if missing.size:
                raise FeatureCacheError(
                    f"{path}: {missing.size} of {num_views} views were never written (first: {missing[0]})"
                )


def write_feature_cache(
    path: str | os.PathLike,
    rgb: Sequence[np.ndarray],
    c2w: np.ndarray,
    K: np.ndarray,
    features: Sequence[np.ndarray],
    is_augmented: Sequence[bool],
    teacher: TeacherInfo,
    nerf_digest: str,
    frame_index: Sequence[int] | None = None,
    render_size: int | None = None,
    compression: str = DEFAULT_COMPRESSION,
    settings: Mapping[str, Any] | None = None,
) -> Path:
    """Write a whole cache from memory (small caches and tests; the pipeline streams with
    :func:`create_feature_cache`).

    Args:
        rgb: ``N`` uint8 ``HxWx3`` renderings (sizes may differ).
        c2w: ``Nx4x4``; K: ``Nx3x3``.
        features: per map, ``NxCxhxw``.
        is_augmented: ``N`` bools; frame_index: ``N`` ints (default: ``-1`` for augmented views,
            else the view's position).
        render_size: ``S`` (default: the largest side in ``rgb``).
    """
    n = len(rgb)
    size = render_size or max(max(im.shape[:2]) for im in rgb)
    frames = list(frame_index) if frame_index is not None else [-1 if a else i for i, a in enumerate(is_augmented)]
    with create_feature_cache(path, n, size, teacher, nerf_digest, compression, settings) as writer:
        for i in range(n):
            writer.write(i, rgb[i], c2w[i], K[i], [f[i] for f in features], bool(is_augmented[i]), frames[i])
    return Path(path)


def _str_attr(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class FeatureCache:
    """Lazy reader of a feature cache; use :func:`open_feature_cache`.

    Small per-view arrays (cameras, sizes, flags) are read on open; renderings and features are
    read per view. Structure (attributes, dataset names, shapes, dtypes) is checked on open.
    One open file per process: reopen it in each data-loader worker.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.is_file():
            raise FeatureCacheError(f"{self.path}: no such feature cache (run rule cache_features first)")
        try:
            self.file = h5py.File(self.path, "r")
        except OSError as e:
            raise open_error(self.path, e) from e
        try:
            self.meta = self._read_meta()
            self._check_structure()
            self.image_hw = self._read("image_hw")
            self.c2w = self._read("c2w")
            self.K = self._read("K")
            self.is_augmented = self._read("is_augmented").astype(bool)
            self.frame_index = self._read("frame_index")
            self.valid_hw = [self._read(f"valid_hw/{i}") for i in range(self.num_maps)]
        except BaseException:
            self.file.close()
            raise

    def _error(self, problem: str) -> FeatureCacheError:
        return FeatureCacheError(f"{self.path}: {problem}")

    def _read(self, name: str, index=()) -> np.ndarray:
        try:
            return self.file[name][index]
        except (OSError, KeyError) as e:
            raise self._error(
                f"cannot read {name}{list(index) if index != () else ''}: the file is truncated or corrupt ({e})"
            ) from e

    def _read_meta(self) -> FeatureCacheMeta:
        attrs = self.file.attrs
        missing = [k for k in _ATTRS if k not in attrs]
        if missing:
            raise self._error(f"not a san feature cache: missing attribute(s) {', '.join(missing)}")
        version = int(attrs["format_version"])
        if version not in READABLE_VERSIONS:
            readable = ", ".join(str(v) for v in READABLE_VERSIONS)
            raise self._error(
                f"format_version {version}, this san (writes {FORMAT_VERSION}) reads versions {readable}: re-run rule cache_features"
            )
        shapes = np.asarray(attrs["feature_shapes"])
        if shapes.ndim != 2 or shapes.shape[1] != 3 or shapes.shape[0] < 1:
            raise self._error(f"attribute feature_shapes must be Mx3, got shape {shapes.shape}")
        try:
            settings = json.loads(_str_attr(attrs["settings"]))
            timing = json.loads(_str_attr(attrs["timing"])) if "timing" in attrs else None
        except json.JSONDecodeError as e:
            raise self._error(f"attribute settings/timing is not valid JSON ({e})") from e
        meta = FeatureCacheMeta(
            format_version=version,
            teacher=_str_attr(attrs["teacher"]),
            untrained=bool(attrs["untrained"]),
            checkpoint_sha256=_str_attr(attrs["checkpoint_sha256"]) or None,
            input_size=int(attrs["input_size"]),
            render_size=int(attrs["render_size"]),
            feature_shapes=tuple(tuple(int(v) for v in s) for s in shapes),
            nerf_digest=_str_attr(attrs["nerf_digest"]),
            created=_str_attr(attrs["created"]),
            san_version=_str_attr(attrs["san_version"]),
            settings=settings,
            timing=timing,
            teacher_kind=_str_attr(attrs["teacher_kind"])
            if "teacher_kind" in attrs
            else ("untrained" if bool(attrs["untrained"]) else "sam"),
            teacher_label=_str_attr(attrs["teacher_label"]) if "teacher_label" in attrs else "",
        )
        if (meta.teacher_kind == "untrained") != meta.untrained:
            raise self._error(f"teacher_kind {meta.teacher_kind!r} and untrained={meta.untrained} disagree")
        if meta.untrained != ("untrained" in meta.teacher):
            raise self._error(f"teacher {meta.teacher!r} and untrained={meta.untrained} disagree")
        return meta

    def _check_structure(self) -> None:
        f, meta = self.file, self.meta
        names = list(_VIEW_DATASETS) + [f"{g}/{i}" for i in range(self.num_maps) for g in ("features", "valid_hw")]
        missing = [n for n in names if n not in f]
        if missing:
            raise self._error(f"missing dataset(s) {', '.join(missing)}")
        extra = sorted(set(f.get("features", {}).keys()) - {str(i) for i in range(self.num_maps)})
        if extra:
            raise self._error(f"features/{extra[0]} is not in the feature_shapes attribute ({self.num_maps} map(s))")
        n, s = f["rgb"].shape[0], meta.render_size
        if n < 1:
            raise self._error("no views")
        expected = {
            "rgb": ((n, s, s, 3), (np.uint8,)),
            "image_hw": ((n, 2), (np.int32, np.int64)),
            "c2w": ((n, 4, 4), (np.float32, np.float64)),
            "K": ((n, 3, 3), (np.float32, np.float64)),
            "is_augmented": ((n,), (np.bool_,)),
            "frame_index": ((n,), (np.int32, np.int64)),
        }
        for i, shape in enumerate(meta.feature_shapes):
            expected[f"features/{i}"] = ((n, *shape), (np.float16, np.float32))
            expected[f"valid_hw/{i}"] = ((n, 2), (np.int32, np.int64))
        problems = []
        for name, (shape, dtypes) in expected.items():
            ds = f[name]
            if ds.shape != shape:
                problems.append(f"{name} has shape {ds.shape}, expected {shape}")
            if ds.dtype not in [np.dtype(d) for d in dtypes]:
                problems.append(
                    f"{name} has dtype {ds.dtype}, expected {' or '.join(np.dtype(d).name for d in dtypes)}"
                )
        if problems:
            raise self._error("inconsistent layout: " + "; ".join(problems))

    @property
    def num_views(self) -> int:
        return int(self.file["rgb"].shape[0])

    def __len__(self) -> int:
        return self.num_views

    @property
    def num_maps(self) -> int:
        return len(self.meta.feature_shapes)

    @property
    def feature_shapes(self) -> tuple[tuple[int, int, int], ...]:
        return self.meta.feature_shapes

    def _check_index(self, index: int) -> int:
        if not -self.num_views <= index < self.num_views:
            raise IndexError(f"{self.path}: view {index} out of range ({self.num_views} views)")
        return index % self.num_views

    def rgb(self, index: int) -> np.ndarray:
        """``HxWx3`` uint8 rendering of view ``index``."""
        index = self._check_index(index)
        h, w = (int(v) for v in self.image_hw[index])
        return self._read("rgb", (index, slice(0, h), slice(0, w)))

    def features(self, index: int) -> list[np.ndarray]:
        """Per map, the ``CxHxW`` float16 features of view ``index`` (full padded map).

        Raises:
            FeatureCacheError: a chunk that cannot be read, or features with NaN/inf (a corrupt chunk
                can decode to NaNs without a read error); trainers never see non-finite targets.
        """
        index = self._check_index(index)
        maps = [self._read(f"features/{i}", (index,)) for i in range(self.num_maps)]
        for i, m in enumerate(maps):
            if not np.isfinite(m).all():
                bad = int((~np.isfinite(m)).sum())
                raise self._error(
                    f"features/{i}[{index}] has NaN/inf values ({bad} of {m.size}): the cache is corrupt; "
                    "delete it and rerun rule cache_features"
                )
        return maps

    def view(self, index: int) -> CachedView:
        """Everything stored for view ``index`` (one read per dataset)."""
        index = self._check_index(index)
        h, w = (int(v) for v in self.image_hw[index])
        return CachedView(
            index=index,
            rgb=self.rgb(index),
            c2w=self.c2w[index],
            K=self.K[index],
            width=w,
            height=h,
            features=self.features(index),
            valid_hw=[tuple(int(v) for v in vh[index]) for vh in self.valid_hw],
            is_augmented=bool(self.is_augmented[index]),
            frame_index=int(self.frame_index[index]),
        )

    def sample_indices(self, full: bool = False) -> list[int]:
        """Views :meth:`validate` reads: all with ``full``, else first, middle and last."""
        n = self.num_views
        return list(range(n)) if full else sorted({0, n // 2, n - 1})

    def validate(self, full: bool = False) -> None:
        """Check per-view metadata everywhere and content on a sample of views.

        Checks: image sizes within ``render_size``; ``valid_hw``
        equal to what the teacher geometry implies; ``frame_index`` consistent with
        ``is_augmented``; on sampled views (every view with ``full``): features and renderings
        readable (catches truncated or corrupt chunks), features finite, rotations orthonormal,
        focal lengths positive.

        Raises:
            FeatureCacheError: naming the file and every problem found.
        """
        meta, problems = self.meta, []
        s = meta.render_size
        hw = self.image_hw
        outside = np.flatnonzero((hw < 1).any(axis=1) | (hw > s).any(axis=1))
        if outside.size:
            j = int(outside[0])
            problems.append(f"image_hw[{j}] = {hw[j].tolist()} is outside [1, render_size {s}]")
        for i, (c, h, w) in enumerate(meta.feature_shapes):
            expected = np.array([valid_feature_hw(v, meta.input_size, (h, w)) for v in hw])
            wrong = np.flatnonzero((self.valid_hw[i] != expected).any(axis=1))
            if wrong.size:
                j = int(wrong[0])
                found = self.valid_hw[i][j].tolist()
                problems.append(
                    f"valid_hw/{i}[{j}] = {found}, expected {expected[j].tolist()} for image {hw[j].tolist()}"
                )
        if ((self.frame_index >= 0) == self.is_augmented).any():
            j = int(np.flatnonzero((self.frame_index >= 0) == self.is_augmented)[0])
            problems.append(
                f"view {j}: frame_index {int(self.frame_index[j])} disagrees with is_augmented {bool(self.is_augmented[j])}"
            )
        for j in self.sample_indices(full):
            try:
                self.features(j)  # reads every chunk of the view and checks that the values are finite
                self.rgb(j)
            except FeatureCacheError as e:
                problems.append(str(e).removeprefix(f"{self.path}: "))
            if orthonormality_error(self.c2w[j, :3, :3]) > 1e-3:
                problems.append(f"c2w[{j}] rotation is not orthonormal")
            if not (self.K[j, 0, 0] > 0 and self.K[j, 1, 1] > 0):
                problems.append(f"K[{j}] has non-positive focal lengths")
        if problems:
            raise self._error("; ".join(problems))

    def feature_stats(self, indices: Sequence[int] | None = None) -> list[dict[str, float]]:
        """Per map, ``mean, std, min, max`` over the valid cells of the given views (default: the
        :meth:`sample_indices`)."""
        indices = self.sample_indices() if indices is None else list(indices)
        stats = []
        for i in range(self.num_maps):
            values = []
            for j in indices:
                h, w = (int(v) for v in self.valid_hw[i][j])
                values.append(
                    self._read(f"features/{i}", (j, slice(None), slice(0, h), slice(0, w))).astype(np.float32).ravel()
                )
            v = np.concatenate(values)
            stats.append({"mean": float(v.mean()), "std": float(v.std()), "min": float(v.min()), "max": float(v.max())})
        return stats

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> "FeatureCache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@contextlib.contextmanager
def open_feature_cache(path: str | os.PathLike, validate: bool = False) -> Iterator[FeatureCache]:
    """Open a cache for reading (structure checked; content too with ``validate=True``)."""
    cache = FeatureCache(path)
    try:
        if validate:
            cache.validate()
        yield cache
    finally:
        cache.close()
