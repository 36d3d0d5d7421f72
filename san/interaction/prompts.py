"""The prompts TSV of ``san segment`` and rule ``segment_prompts``: one click per row.

Format (config key ``segment.prompts``), ``#`` comments allowed::

    scene       view  x      y      label
    llff/fern   3     120.5  80.5   1
    llff/fern   3     30.5   40.5   0

``scene`` is the scene id ``dataset/name``; ``view`` the index of a frame in the scene's
``poses/cameras.json`` (file order, train and test frames alike); ``(x, y)`` pixels of that view
(pixel centres at ``+0.5``); ``label`` 1 positive, 0 negative. The rows of one ``(scene, view)``
are one object; an optional ``object`` column splits a view's rows into several objects. An
optional ``text`` column holds text (concept) prompts for teachers with a text head (SAM 3): a row
with a text leaves ``x``, ``y`` and ``label`` empty, and is an object of its own (one text per
``(scene, view, object)``)::

    scene       view  x      y      label  object  text
    demo/demo   3     40.5   60.5   1      a
    demo/demo   3                          b       a yellow bulldozer

Every
row is checked before anything is rendered, and all problems are reported at once, each with its
line number (unknown scene or view, click outside the image, bad label).

:func:`mesh_views` picks the views whose masks are voted onto the mesh.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from san.data.scene import Scene

PROMPT_COLUMNS = ("scene", "view", "x", "y", "label")
OPTIONAL_COLUMNS = ("object", "text")


class PromptError(ValueError):
    """Bad prompts TSV rows; the message lists every problem with its line number."""


def read_prompts(path: str | os.PathLike):
    """Read a prompts TSV (module docstring) into a DataFrame with a ``line`` column (1-based file
    line, for messages). Column and type problems are reported all at once."""
    from san.utils.tsv import SheetError, read_sheet

    path = Path(path)
    if not path.is_file():
        raise PromptError(f"{path}: prompts file not found (config key segment.prompts)")
    try:
        sheet = read_sheet(path)
    except SheetError as e:
        raise PromptError(str(e)) from None
    df = sheet.frame()
    missing = [c for c in PROMPT_COLUMNS if c not in sheet.header]
    columns = f"{', '.join(PROMPT_COLUMNS)}[, object][, text]"
    if missing:
        raise PromptError(f"{path}: missing column(s) {missing}; columns are {columns}")
    extra = [c for c in sheet.header if c not in (*PROMPT_COLUMNS, *OPTIONAL_COLUMNS)]
    if extra:
        raise PromptError(f"{path}: unknown column(s) {extra}; columns are {columns}")
    for c in OPTIONAL_COLUMNS:
        if c not in df.columns:
            df[c] = ""
    df = df[[*PROMPT_COLUMNS, *OPTIONAL_COLUMNS, "line"]]
    problems = []
    for i, row in df.iterrows():
        where = f"line {row['line']}"
        try:
            int(row["view"])
        except ValueError:
            problems.append(f"{where}: view {row['view']!r} is not an integer")
        if row["text"].strip():
            if any(str(row[c]).strip() for c in ("x", "y", "label")):
                problems.append(f"{where}: a text prompt leaves x, y and label empty")
            continue
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
    df["text"] = df["text"].str.strip()
    texts = df["text"] != ""
    if texts.any():
        per_object = df.groupby(["scene", "view", "object"])["text"].agg(lambda t: ((t != "").sum(), len(t)))
        mixed = [k for k, (n_text, n) in per_object.items() if n_text and n > 1]
        if mixed:
            raise PromptError(
                f"{path}: a text prompt is an object of its own; (scene, view, object) {mixed[0]} has other rows too "
                "(give it its own object name)"
            )
    df["view"] = df["view"].astype(int)
    df["x"] = df["x"].where(~texts, "nan").astype(float)
    df["y"] = df["y"].where(~texts, "nan").astype(float)
    df["label"] = df["label"].where(~texts, "-1").astype(int)
    return df


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
        if row.get("text"):
            continue
        if not (0 <= row["x"] < frame.width and 0 <= row["y"] < frame.height):
            problems.append(
                f"{where}: click ({row['x']:g}, {row['y']:g}) is outside the {frame.width}x{frame.height} image "
                f"(x in [0, {frame.width}), y in [0, {frame.height}))"
            )
    if problems:
        raise PromptError("prompts: " + "\n  ".join(problems))


def mesh_views(scene: Scene, view: int, count: int) -> list[int]:
    """``view`` plus ``count - 1`` training views spread evenly over the training list."""
    train = [i for i in scene.indices("train") if i != view] or [i for i in range(len(scene.frames)) if i != view]
    extra = max(0, min(count - 1, len(train)))
    picks = [train[int(round(k))] for k in np.linspace(0, len(train) - 1, extra)] if extra else []
    return [view] + sorted(set(picks))
