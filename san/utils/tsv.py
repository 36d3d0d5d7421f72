"""Tab-separated sheets written by hand (the scene sheet, prompts files).

``#`` starts a comment only at the start of a line (leading spaces allowed): a ``#`` inside a field
is data (capture folders named ``run#2`` or ``scan#14`` are common). Blank lines are skipped. The
first remaining line is the header. A row with more fields than the header is an error that shows
the raw line and its number; a shorter row is padded with empty fields (trailing empty columns are
often dropped by editors).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


class SheetError(ValueError):
    """A sheet that cannot be read as a table; the message names the file, the line and shows it."""


@dataclass(frozen=True)
class SheetRow:
    """One data row: ``values`` by column name, its 1-based ``line`` number and the ``raw`` text."""

    line: int
    raw: str
    values: dict[str, str]


@dataclass(frozen=True)
class Sheet:
    path: Path
    header: tuple[str, ...]
    rows: tuple[SheetRow, ...]

    def frame(self):
        """The rows as a ``pandas.DataFrame`` of strings with an extra ``line`` column."""
        import pandas as pd

        df = pd.DataFrame([r.values for r in self.rows], columns=list(self.header), dtype=str)
        df["line"] = [r.line for r in self.rows]
        return df

    def raw_line(self, line: int) -> str:
        return next((r.raw for r in self.rows if r.line == line), "")


def read_sheet(path: str | os.PathLike) -> Sheet:
    """Read a TSV sheet (module docstring).

    Raises:
        SheetError: the file cannot be decoded as text, or a row has more fields than the header.
        FileNotFoundError: ``path`` does not exist.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise SheetError(f"{path}: not a UTF-8 text file ({e})") from e
    header: tuple[str, ...] | None = None
    rows: list[SheetRow] = []
    problems = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        fields = [v.strip() for v in raw.split("\t")]
        if header is None:
            header = tuple(fields)
            continue
        if len(fields) > len(header):
            problems.append(
                f"line {number} has {len(fields)} tab-separated fields, the header has {len(header)} "
                f"({', '.join(header)}): {raw!r}"
            )
            continue
        fields += [""] * (len(header) - len(fields))
        rows.append(SheetRow(number, raw, dict(zip(header, fields))))
    if problems:
        raise SheetError(f"{path}: " + "\n  ".join(problems))
    return Sheet(path, header or (), tuple(rows))
