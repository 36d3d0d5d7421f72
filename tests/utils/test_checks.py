"""Content checks (issue 13, kind 4): non-finite values stop a stage with a message naming it; no
JSON file ever holds NaN."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from san.utils.checks import NonFiniteError, require_finite
from san.utils.io import atomic_write_json


@pytest.mark.parametrize("value", [1.0, 0, np.zeros((3, 2)), torch.ones(4), torch.tensor(2.5), np.arange(3)])
def test_finite_values_pass(value):
    require_finite(value, stage="s", what="w")


@pytest.mark.parametrize(
    "value, described",
    [
        (math.nan, "nan"),
        (float("inf"), "inf"),
        (torch.tensor(float("nan")), "nan"),
        (np.array([1.0, np.nan, np.inf]), "2 of 3 values non-finite"),
        (torch.tensor([0.0, float("-inf")]), "1 of 2 values non-finite"),
    ],
)
def test_non_finite_values_name_stage_what_and_hint(value, described):
    with pytest.raises(NonFiniteError) as info:
        require_finite(value, stage="train_nerf", what="the loss at step 7", hint="lower nerf.lr")
    assert str(info.value) == f"train_nerf: the loss at step 7 is not finite ({described}); lower nerf.lr"


def test_json_never_holds_nan(tmp_path):
    path = tmp_path / "metrics.json"
    with pytest.raises(
        ValueError, match=r"metrics.json: refusing to write NaN or infinity into JSON \(psnr, per_view\[1\].ssim\)"
    ):
        atomic_write_json(path, {"psnr": float("nan"), "per_view": [{"ssim": 1.0}, {"ssim": np.float64("inf")}]})
    assert not path.exists() and list(tmp_path.iterdir()) == []
    atomic_write_json(path, {"psnr": 21.5})
    assert json.loads(path.read_text()) == {"psnr": 21.5}
