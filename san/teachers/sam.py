"""Segment Anything as a :class:`~san.teachers.base.Teacher`, built only from segment-anything's
public modules (``segment_anything.modeling`` and ``sam_model_registry``).

Variants (names for :func:`san.teachers.build_teacher`):

* ``sam_vit_h``, ``sam_vit_l``, ``sam_vit_b``: the released architectures loaded from a
  user-supplied checkpoint (``sam_vit_h_4b8939.pth``, ``sam_vit_l_0b3195.pth``,
  ``sam_vit_b_01ec64.pth``); nothing here downloads them.
* ``sam_vit_h_untrained``, ``sam_vit_l_untrained``, ``sam_vit_b_untrained``: the same
  architectures with seeded random weights, for timing only.
* ``sam_untrained_tiny``: SAM's own encoder and decoder classes with a small ViT (embed_dim 128,
  depth 4, 4 heads, 16 px patches, window 14, last block global). Same 1024 input and
  ``256x64x64`` embedding as the real models; seeded random weights. The CPU demo and test teacher.

Every untrained variant initialises the absolute position embedding with ``N(0, 0.02^2)`` noise
(SAM starts it at zero and learns it) so that its features vary over the image even on flat
regions, as trained features do.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Sequence

import torch
from segment_anything import sam_model_registry
from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

from san.teachers.base import Decoded, Prompts, Teacher, TeacherError, TeacherInfo
from san.utils.io import sha256_file

UNTRAINED_SEED = 0
SAM_INPUT_SIZE = 1024
SAM_EMBED = (256, 64, 64)


@dataclass(frozen=True)
class SamArch:
    """Image-encoder hyper-parameters that tell the SAM variants apart."""

    embed_dim: int
    depth: int
    num_heads: int
    global_attn_indexes: tuple[int, ...]
    checkpoint_name: str | None = None


SAM_ARCHS: dict[str, SamArch] = {
    "vit_h": SamArch(1280, 32, 16, (7, 15, 23, 31), "sam_vit_h_4b8939.pth"),
    "vit_l": SamArch(1024, 24, 16, (5, 11, 17, 23), "sam_vit_l_0b3195.pth"),
    "vit_b": SamArch(768, 12, 12, (2, 5, 8, 11), "sam_vit_b_01ec64.pth"),
    "tiny": SamArch(128, 4, 4, (3,)),
}


class SamTeacher(Teacher):
    """A :class:`Teacher` around a ``segment_anything.modeling.Sam`` model.

    Args:
        sam: the composed SAM model (any image encoder; ``info`` gives its input size and
            embedding shape).
        info: what this teacher is (name, checkpoint, ``untrained``).
        batch_size: most images per image-encoder pass.
    """

    def __init__(self, sam: Sam, info: TeacherInfo, batch_size: int = 1) -> None:
        super().__init__(info, sam.pixel_mean.flatten().tolist(), sam.pixel_std.flatten().tolist(), batch_size)
        self.sam = sam.eval().requires_grad_(False)

    def embed(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``Bx3xSxS`` preprocessed input -> ``[BxCxhxw]`` (released SAM: ``S = 1024``, ``C = 256``,
        ``64x64``; ``sam_tiny_procedural``: ``S = 256``, ``C = 128``, ``16x16``)."""
        return [self.sam.image_encoder(x)]

    @torch.no_grad()
    def decode(
        self,
        features: Sequence[torch.Tensor],
        prompts: Prompts,
        image_size: Sequence[int],
        multimask_output: bool = False,
        mask_input: torch.Tensor | None = None,
    ) -> Decoded:
        """SAM's prompt encoder + mask decoder on one view's ``1x256x64x64`` embedding; see
        :meth:`Teacher.decode`. Masks are thresholded at ``Sam.mask_threshold`` (0)."""
        self.reject_text(prompts)
        (embedding,) = self._prepare_features(features)
        hw = (int(image_size[0]), int(image_size[1]))
        points, box = self.prompts_to_input(prompts, hw)
        point_input = (points[None], prompts.labels.to(self.device)[None]) if points.shape[0] else None
        if mask_input is not None:
            mask_input = (
                torch.as_tensor(mask_input).to(self.device, torch.float32).reshape(1, 1, *mask_input.shape[-2:])
            )
        sparse, dense = self.sam.prompt_encoder(points=point_input, boxes=box, masks=mask_input)
        low_res, scores = self.sam.mask_decoder(
            image_embeddings=embedding,
            image_pe=self.sam.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=multimask_output,
        )
        input_hw = self.transform.get_preprocess_shape(hw[0], hw[1], self.info.input_size)
        logits = self.sam.postprocess_masks(low_res, input_hw, hw)
        return Decoded(logits[0] > self.sam.mask_threshold, scores[0], low_res[0])


def build_sam_tiny() -> Sam:
    """SAM with the ``tiny`` image encoder (see module docstring); default (unseeded) init."""
    arch = SAM_ARCHS["tiny"]
    prompt_dim, patch = SAM_EMBED[0], 16
    grid = SAM_INPUT_SIZE // patch
    return Sam(
        image_encoder=ImageEncoderViT(
            depth=arch.depth,
            embed_dim=arch.embed_dim,
            img_size=SAM_INPUT_SIZE,
            mlp_ratio=4,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            num_heads=arch.num_heads,
            patch_size=patch,
            qkv_bias=True,
            use_rel_pos=True,
            global_attn_indexes=arch.global_attn_indexes,
            window_size=14,
            out_chans=prompt_dim,
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=prompt_dim,
            image_embedding_size=(grid, grid),
            input_image_size=(SAM_INPUT_SIZE, SAM_INPUT_SIZE),
            mask_in_chans=16,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=2, embedding_dim=prompt_dim, mlp_dim=2048, num_heads=8),
            transformer_dim=prompt_dim,
            iou_head_depth=3,
            iou_head_hidden_dim=256,
        ),
    ).eval()


def _build_arch(arch: str) -> Sam:
    return build_sam_tiny() if arch == "tiny" else sam_model_registry[arch](checkpoint=None)


def build_untrained_sam(arch: str, seed: int = UNTRAINED_SEED) -> Sam:
    """Architecture ``arch`` (``vit_h | vit_l | vit_b | tiny``) with weights drawn from ``seed``
    (the global RNG is left untouched); identical on every machine."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        sam = _build_arch(arch)
        pos = sam.image_encoder.pos_embed
        if pos is not None:
            with torch.no_grad():
                pos.normal_(0.0, 0.02)
    return sam


def _describe_state(state: dict) -> str:
    """``"vit_b (embed_dim 768, depth 12)"``-like description of a SAM state dict."""
    weight = state.get("image_encoder.patch_embed.proj.weight")
    if not isinstance(weight, torch.Tensor):
        return "not a SAM state dict (no image_encoder.patch_embed.proj.weight)"
    depth = len({m.group(1) for k in state if (m := re.match(r"image_encoder\.blocks\.(\d+)\.", k))})
    dim = int(weight.shape[0])
    known = [n for n, a in SAM_ARCHS.items() if a.embed_dim == dim and a.depth == depth]
    return f"{known[0] if known else 'an unknown SAM variant'} (embed_dim {dim}, depth {depth})"


def read_sam_checkpoint(path: str | os.PathLike, arch: str) -> dict[str, torch.Tensor]:
    """Read and check a SAM state dict for architecture ``arch`` (before any model is built).

    Raises:
        TeacherError: naming ``path`` when the file is missing, unreadable (corrupt or truncated),
            or holds weights of another architecture.
    """
    path = Path(path)
    expected = SAM_ARCHS[arch]
    if not path.is_file():
        hint = (
            f" (the official file is {expected.checkpoint_name}; download it yourself)"
            if expected.checkpoint_name
            else ""
        )
        raise TeacherError(f"{path}: SAM checkpoint not found{hint}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # the unpickler raises anything on garbage or a cut-off file
        raise TeacherError(
            f"{path}: cannot read SAM checkpoint, the file is corrupt or truncated ({type(e).__name__}: {e})"
        ) from e
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict):
        raise TeacherError(f"{path}: expected a SAM state dict, found a {type(state).__name__}")
    found = _describe_state(state)
    want = f"{arch} (embed_dim {expected.embed_dim}, depth {expected.depth})"
    if found != want:
        raise TeacherError(f"{path}: wrong architecture: the checkpoint holds {found}, the teacher needs {want}")
    return state


def _load_state(sam: Sam, state: dict, path: str | os.PathLike, arch: str) -> None:
    try:
        sam.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        raise TeacherError(f"{path}: does not match SAM {arch}: {' '.join(first[:3])}") from e


def load_sam_checkpoint(sam: Sam, path: str | os.PathLike, arch: str) -> str:
    """Load the checked state dict at ``path`` into ``sam`` (architecture ``arch``).

    Returns:
        The file's hex SHA-256.
    """
    _load_state(sam, read_sam_checkpoint(path, arch), path, arch)
    return sha256_file(path)


def teacher_name(arch: str, untrained: bool) -> str:
    """Registry name of a SAM variant: ``sam_vit_h``, ``sam_vit_h_untrained``, ``sam_untrained_tiny``."""
    if arch == "tiny":
        return "sam_untrained_tiny" if untrained else "sam_tiny"
    return f"sam_{arch}_untrained" if untrained else f"sam_{arch}"


def build_sam_teacher(
    arch: str,
    checkpoint: str | os.PathLike | None = None,
    untrained: bool = False,
    batch_size: int = 1,
) -> SamTeacher:
    """A :class:`SamTeacher` for ``arch`` from ``checkpoint``, or seeded and untrained.

    Exactly one of ``checkpoint`` / ``untrained=True`` must be given.
    """
    if arch not in SAM_ARCHS:
        raise TeacherError(f"unknown SAM architecture {arch!r} (known: {', '.join(SAM_ARCHS)})")
    name = teacher_name(arch, untrained)
    if untrained:
        if checkpoint is not None:
            raise TeacherError(f"teacher {name!r} is untrained and takes no checkpoint (got {checkpoint})")
        info = TeacherInfo(name, SAM_INPUT_SIZE, (SAM_EMBED,), untrained=True)
        return SamTeacher(build_untrained_sam(arch), info, batch_size)
    if checkpoint is None:
        official = SAM_ARCHS[arch].checkpoint_name or "its weights file"
        raise TeacherError(f"teacher {name!r} needs a checkpoint: set teacher.checkpoint to the path of {official}")
    state = read_sam_checkpoint(checkpoint, arch)
    sam = _build_arch(arch)
    _load_state(sam, state, checkpoint, arch)
    del state
    digest = sha256_file(checkpoint)
    info = TeacherInfo(name, SAM_INPUT_SIZE, (SAM_EMBED,), str(Path(checkpoint).resolve()), digest, untrained=False)
    return SamTeacher(sam, info, batch_size)
