"""The report: tables (:mod:`.tables`) and figures (:mod:`.figures`) from every scene's
``evaluation/{variant}/metrics.json``; the rules call :mod:`san.pipeline.report`."""

from __future__ import annotations

from dataclasses import dataclass

from san.config import ConfigError


@dataclass(frozen=True)
class ReportConfig:
    """Config section ``report:``.

    Attributes:
        table1_variant: the variant whose timings make Table 1 (all variants when absent).
        qualitative_max: most per-scene qualitative panels in the grid figure.
        dpi: resolution of the report's PNG figures.
    """

    table1_variant: str = "full"
    qualitative_max: int = 8
    dpi: int = 120

    def __post_init__(self) -> None:
        if self.qualitative_max < 0 or self.dpi < 10:
            raise ConfigError(
                f"config.report: qualitative_max must be >= 0 and dpi >= 10, got {self.qualitative_max}, {self.dpi}"
            )


__all__ = ["ReportConfig"]
