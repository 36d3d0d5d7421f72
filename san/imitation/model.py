"""The imitation model: one shared semantic grid, one head per teacher feature map (paper Sec. 4.1).

``field.pt`` (written by :func:`save_imitation`, read by :func:`load_imitation`) holds the state
dict and everything needed to rebuild the model: field and head configs, the teacher's feature
shapes and input size, the variant, and metadata. The stage stores ``teacher`` (the registry name
the field imitates), ``teacher_info`` (name, ``untrained`` flag, checkpoint digest, shapes),
``variant``, ``config``, ``seed`` and the input files; :func:`load_imitation` puts it on
``model.metadata``.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from san.fields.config import SemanticFieldConfig
from san.fields.semantic_field import SemanticField
from san.imitation.config import FeatureHeadConfig
from san.imitation.geometry import RayGeometry
from san.imitation.head import FeatureHead, head_input
from san.utils.checkpoint import CheckpointError
from san.utils.checks import require_finite
from san.utils.io import atomic_path

FORMAT_VERSION = 1


class ImitationModel(nn.Module):
    """Semantic grid + per-map heads.

    Args:
        field_config: the shared grid.
        head_config: every head's shape and inputs.
        feature_shapes: the teacher's ``(C, h, w)`` per map.
        input_size: the teacher's padded input side (for feature cameras).
        mesh_surface: Eq. 7 (mesh surface point) instead of Eq. 6 (volume rendering).
        max_samples: NeRF samples kept per ray in training (``0``: all); rendering uses the same.
        backend, device: hash-grid backend and device.
        encoding: a prebuilt grid encoding (tests).
    """

    def __init__(
        self,
        field_config: SemanticFieldConfig,
        head_config: FeatureHeadConfig,
        feature_shapes: Sequence[Sequence[int]],
        input_size: int,
        mesh_surface: bool = False,
        max_samples: int = 0,
        backend: str = "auto",
        device: torch.device | str = "cpu",
        encoding: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.field_config = field_config
        self.head_config = head_config
        self.feature_shapes = tuple(tuple(int(v) for v in s) for s in feature_shapes)
        self.input_size = int(input_size)
        self.mesh_surface = bool(mesh_surface)
        self.max_samples = int(max_samples)
        self.metadata: dict[str, Any] = {}
        self.field = SemanticField(field_config, backend, device, encoding)
        in_dim = head_config.input_dim(self.field.out_dim)
        self.heads = nn.ModuleList(FeatureHead(in_dim, c, head_config) for c, _, _ in self.feature_shapes)
        # Per map, the teacher's mean feature over the padded (imageless) cells: what render_features
        # puts there, so that a decoder sees a plausible padding region. Updated during training.
        for i, (c, _, _) in enumerate(self.feature_shapes):
            self.register_buffer(f"pad_feature_{i}", torch.zeros(c))
        self.to(device)

    @property
    def num_maps(self) -> int:
        return len(self.feature_shapes)

    def pad_feature(self, i: int) -> torch.Tensor:
        return getattr(self, f"pad_feature_{i}")

    @torch.no_grad()
    def init_output_statistics(
        self, means: Sequence[torch.Tensor], stds: Sequence[torch.Tensor], gain: float = 1.0
    ) -> None:
        """Start each head's final LayerNorm at the teacher's per-channel statistics (bias = mean,
        weight = ``gain`` x std), so training begins at the right scale instead of unit variance.

        Args:
            means, stds: per map, ``C`` channel means / standard deviations of teacher features.
        """
        for head, mean, std in zip(self.heads, means, stds):
            if isinstance(head.norm, nn.LayerNorm):
                head.norm.bias.copy_(mean.to(head.norm.bias))
                head.norm.weight.copy_((gain * std).to(head.norm.weight))

    def grid_features(self, geometry: RayGeometry) -> torch.Tensor:
        """``NxD`` rendered grid features (Eq. 6's sum, or Eq. 7's single point)."""
        return self.field.render(geometry.weights, geometry.points)

    def forward(self, geometry: RayGeometry, map_index: int = 0) -> torch.Tensor:
        """``N`` rays -> ``N x C_i`` imitated features of map ``map_index``."""
        grid = self.grid_features(geometry)
        return self.heads[map_index](head_input(grid, geometry.rgb, geometry.depth, self.head_config, geometry.latent))

    def forward_all(self, geometry: RayGeometry) -> list[torch.Tensor]:
        """All maps' features for the same rays (the grid is rendered once)."""
        x = head_input(self.grid_features(geometry), geometry.rgb, geometry.depth, self.head_config, geometry.latent)
        return [head(x) for head in self.heads]

    def spec(self) -> dict[str, Any]:
        return {
            "field_config": dataclasses.asdict(self.field_config),
            "head_config": dataclasses.asdict(self.head_config),
            "feature_shapes": [list(s) for s in self.feature_shapes],
            "input_size": self.input_size,
            "mesh_surface": self.mesh_surface,
            "max_samples": self.max_samples,
        }


def build_from_spec(spec: dict[str, Any], backend: str = "auto", device: torch.device | str = "cpu") -> ImitationModel:
    return ImitationModel(
        SemanticFieldConfig(**spec["field_config"]),
        FeatureHeadConfig(**spec["head_config"]),
        spec["feature_shapes"],
        spec["input_size"],
        spec["mesh_surface"],
        spec.get("max_samples", 0),
        backend,
        device,
    )


def save_imitation(model: ImitationModel, path: str | os.PathLike, metadata: dict[str, Any] | None = None) -> Path:
    """Write ``field.pt`` atomically (state dict + spec + ``metadata``)."""
    path = Path(path)
    record = {
        "format_version": FORMAT_VERSION,
        "spec": model.spec(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "metadata": dict(metadata or {}),
    }
    with atomic_path(path) as tmp:
        torch.save(record, tmp)
    return path


def load_imitation(
    path: str | os.PathLike, device: torch.device | str = "cpu", backend: str = "auto"
) -> ImitationModel:
    """Rebuild the model saved by :func:`save_imitation` (``model.metadata`` holds its metadata)."""
    path = Path(path)
    try:
        record = torch.load(path, map_location="cpu", weights_only=False)
    except FileNotFoundError as e:
        raise FileNotFoundError(f"{path}: no imitation model (run rule train_imitation first)") from e
    except Exception as e:
        raise CheckpointError(f"{path}: cannot read imitation model ({type(e).__name__}: {e})") from e
    if not isinstance(record, dict) or record.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: not a san imitation model of format_version {FORMAT_VERSION}")
    model = build_from_spec(record["spec"], backend, device)
    for name, value in record["state_dict"].items():
        require_finite(
            value,
            stage="load_imitation",
            what=f"{path}: weight {name}",
            hint="the field diverged when it was trained; retrain it",
        )
    model.load_state_dict(record["state_dict"])
    model.metadata = record["metadata"]
    model.eval()
    return model
