"""TOY multi-scale teacher, for tests only: not a segmentation model.

``toy_multiscale_untrained`` is a two-layer, seeded random conv net that returns two feature maps
of different sizes (``32x32x32`` and ``64x16x16`` for a ``256`` input). It exists so that the
multi-scale paths (feature cache ``features/1``, the imitation stage's cross-scale loss) can be
tested on CPU in milliseconds. Its :meth:`~ToyMultiScaleTeacher.decode` thresholds the cosine
similarity of map 0 to the clicked cells: geometrically well-formed masks, semantically nothing.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from san.teachers import TOY_NAME
from san.teachers.base import Decoded, Prompts, Teacher, TeacherInfo


class ToyMultiScaleTeacher(Teacher):
    """TOY teacher with two feature maps (see module docstring).

    Args:
        input_size: side of the padded square input (a multiple of 16).
        seed: weight seed.
        batch_size: most images per pass.
    """

    def __init__(self, input_size: int = 256, seed: int = 0, batch_size: int = 8) -> None:
        s = input_size
        info = TeacherInfo(TOY_NAME, s, ((32, s // 8, s // 8), (64, s // 16, s // 16)), untrained=True)
        super().__init__(info, batch_size=batch_size)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.stem = nn.Sequential(nn.Conv2d(3, 32, 8, stride=8), nn.GELU(), nn.Conv2d(32, 32, 3, padding=1))
            self.down = nn.Conv2d(32, 64, 2, stride=2)
        self.eval().requires_grad_(False)

    def embed(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``Bx3xSxS`` -> ``[Bx32x(S/8)x(S/8), Bx64x(S/16)x(S/16)]``."""
        fine = self.stem(x)
        return [fine, self.down(F.gelu(fine))]

    @torch.no_grad()
    def decode(
        self,
        features: Sequence[torch.Tensor],
        prompts: Prompts,
        image_size: Sequence[int],
        multimask_output: bool = False,
        mask_input: torch.Tensor | None = None,
    ) -> Decoded:
        """Cosine similarity of map 0 to the positive clicks' cells minus that to the negative
        ones (floor 0.5); a box alone acts as a click at its centre and crops the mask. Always
        one mask (``multimask_output`` and ``mask_input`` are accepted and ignored)."""
        self.reject_text(prompts)
        fmap = self._prepare_features(features)[0][0]
        c, h, w = fmap.shape
        size = self.info.input_size
        hw = (int(image_size[0]), int(image_size[1]))
        points, box = self.prompts_to_input(prompts, hw)
        points, labels = points + 0.5, prompts.labels.to(self.device)
        box = None if box is None else box[0] + 0.5
        if points.shape[0] == 0:
            points = torch.stack([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])[None]
            labels = torch.ones(1, dtype=torch.int64, device=self.device)
        cells = (points * torch.tensor([w / size, h / size], device=self.device)).long()
        cells[:, 0].clamp_(0, w - 1)
        cells[:, 1].clamp_(0, h - 1)
        unit = F.normalize(fmap.reshape(c, -1), dim=0)
        sim = unit[:, cells[:, 1] * w + cells[:, 0]].T @ unit
        pos = sim[labels == 1].amax(0) if bool((labels == 1).any()) else torch.zeros(h * w, device=self.device)
        neg = sim[labels == 0].amax(0) if bool((labels == 0).any()) else torch.zeros_like(pos)
        logits = (pos - neg.clamp(min=0.5)).reshape(1, 1, h, w)
        if box is not None:
            ys = (torch.arange(h, device=self.device) + 0.5) * size / h
            xs = (torch.arange(w, device=self.device) + 0.5) * size / w
            inside = (ys[:, None] >= box[1]) & (ys[:, None] <= box[3]) & (xs >= box[0]) & (xs <= box[2])
            logits = torch.where(inside, logits, torch.full_like(logits, -1.0))
        input_hw = self.transform.get_preprocess_shape(hw[0], hw[1], size)
        full = F.interpolate(logits, (size, size), mode="bilinear", align_corners=False)
        full = F.interpolate(full[..., : input_hw[0], : input_hw[1]], hw, mode="bilinear", align_corners=False)
        masks = full[0] > 0
        score = pos.reshape(1, h, w)[logits[0] > 0].mean() if bool((logits > 0).any()) else pos.new_zeros(())
        return Decoded(masks, score.reshape(1), logits[0])
