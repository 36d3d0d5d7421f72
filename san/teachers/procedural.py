"""``sam_tiny_procedural``: SAM's architecture, small, trained by this project on procedural scenes.

NOT SAM: the weights were never near Meta's data. The model is composed from segment-anything's
own classes (``ImageEncoderViT``, ``PromptEncoder``, ``MaskDecoder`` over ``TwoWayTransformer``)
with small dimensions (:data:`ARCH`), trained by :mod:`san.teachers.procedural_training` with
SAM's recipe on :mod:`san.data.procedural` scenes. It knows procedural objects (primitives on a
ground under a sky), not photographs.

Sizes and why:

* input ``256`` px, patch ``16`` -> a ``128x16x16`` embedding: cost follows the token count, and
  16x16 tokens train about 4x faster than 32x32, which keeps the recipe within an hour on two CPU
  cores; the pipeline renders views at 128-192 px, so a 256 px input loses nothing (a mask decoded
  at the decoder's 64x64 output from a perfect logit map keeps 0.98 IoU on held-out objects);
* image encoder depth 4, width 160, 4 heads, windows of 8 with global attention in blocks 1 and 3
  (13 ms per view on one core);
* mask decoder (and prompt / embedding) width 128, SAM's: 256. The decoder runs once per prompt
  and corrective round, so it, not the encoder, dominates a training step: at two threads a step
  of the recipe takes 0.69 s with width 256 and 0.41 s with 128 (the encoder's share: 0.15 s),
  which buys 1.7x the steps in the hour. An MLP of 512 (SAM: 2048).

Weights ship in ``san/teachers/weights/``: ``sam_tiny_procedural.safetensors`` (float16) and
``sam_tiny_procedural.json`` (its SHA-256, the recipe and held-out metrics, written by
``scripts/train_procedural_teacher.py``). The digest is checked at every load.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import torch
from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

from san.teachers.base import TeacherError, TeacherInfo
from san.utils.io import sha256_file

NAME = "sam_tiny_procedural"
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
WEIGHTS_FILE = WEIGHTS_DIR / f"{NAME}.safetensors"
CARD_FILE = WEIGHTS_DIR / f"{NAME}.json"


@dataclass(frozen=True)
class ProceduralArch:
    """Dimensions of the procedural teacher (see the module docstring)."""

    input_size: int = 256
    patch_size: int = 16
    embed_dim: int = 160
    depth: int = 4
    num_heads: int = 4
    window_size: int = 8
    global_attn_indexes: tuple[int, ...] = (1, 3)
    prompt_dim: int = 128
    decoder_depth: int = 2
    decoder_mlp_dim: int = 512
    decoder_heads: int = 8
    num_multimask_outputs: int = 3
    iou_head_hidden_dim: int = 128

    @property
    def embedding_shape(self) -> tuple[int, int, int]:
        g = self.input_size // self.patch_size
        return (self.prompt_dim, g, g)


ARCH = ProceduralArch()


def build_procedural_sam(arch: ProceduralArch = ARCH) -> Sam:
    """The untrained model (default init); SAM's own classes with :data:`ARCH`'s sizes."""
    c, g, _ = arch.embedding_shape
    return Sam(
        image_encoder=ImageEncoderViT(
            img_size=arch.input_size,
            patch_size=arch.patch_size,
            embed_dim=arch.embed_dim,
            depth=arch.depth,
            num_heads=arch.num_heads,
            mlp_ratio=4,
            out_chans=c,
            qkv_bias=True,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            use_rel_pos=True,
            window_size=arch.window_size,
            global_attn_indexes=arch.global_attn_indexes,
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=c,
            image_embedding_size=(g, g),
            input_image_size=(arch.input_size, arch.input_size),
            mask_in_chans=16,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=arch.num_multimask_outputs,
            transformer=TwoWayTransformer(
                depth=arch.decoder_depth, embedding_dim=c, mlp_dim=arch.decoder_mlp_dim, num_heads=arch.decoder_heads
            ),
            transformer_dim=c,
            iou_head_depth=3,
            iou_head_hidden_dim=arch.iou_head_hidden_dim,
        ),
    )


def save_weights(sam: Sam, path: str | os.PathLike) -> str:
    """Write ``sam``'s state dict as float16 safetensors at ``path`` (atomically); returns its SHA-256.

    The file's bytes depend on the weights alone: the metadata is ONE key (``san``: name and
    architecture as sorted JSON), because ``safetensors`` writes a metadata map of several keys in
    a random order (a Rust ``HashMap``), which gave identical weights different digests."""
    from safetensors.torch import save_file

    from san.utils.io import atomic_path

    state = {k: v.detach().to("cpu", torch.float16).contiguous() for k, v in sam.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={"san": json.dumps({"name": NAME, "arch": asdict(ARCH)}, sort_keys=True)})
    return sha256_file(path)


def read_card(path: str | os.PathLike = CARD_FILE) -> dict:
    """The model card beside the weights (``sha256``, recipe, metrics)."""
    path = Path(path)
    if not path.is_file():
        raise TeacherError(f"{path}: model card of {NAME} not found (the weights' expected SHA-256 is kept there)")
    return json.loads(path.read_text())


def load_procedural_sam(path: str | os.PathLike = WEIGHTS_FILE, expected_sha256: str | None = None) -> tuple[Sam, str]:
    """Build the model and load float16 safetensors weights from ``path``.

    Args:
        path: weights file (default: the shipped one).
        expected_sha256: hex digest the file must have; for the shipped file, ``None`` reads it
            from the model card beside it.

    Returns:
        ``(model in eval mode, float32, the file's SHA-256)``.

    Raises:
        TeacherError: naming ``path`` when it is missing, its digest differs from the expected
            one, it is not readable safetensors, or it does not fit the architecture.
    """
    path = Path(path)
    if not path.is_file():
        hint = " (run scripts/train_procedural_teacher.py to make it)" if path == WEIGHTS_FILE else ""
        raise TeacherError(f"{path}: weights of teacher {NAME!r} not found{hint}")
    if expected_sha256 is None and path.resolve() == WEIGHTS_FILE:
        expected_sha256 = read_card(CARD_FILE).get("sha256")
        if not expected_sha256:
            raise TeacherError(f"{CARD_FILE}: model card has no 'sha256' entry")
    digest = sha256_file(path)
    if expected_sha256 is not None and digest != expected_sha256:
        raise TeacherError(
            f"{path}: SHA-256 mismatch for teacher {NAME!r}: the file has {digest}, expected {expected_sha256} "
            "(corrupt, truncated or replaced weights)"
        )
    from safetensors.torch import load_file

    try:
        state = load_file(str(path))
    except Exception as e:  # safetensors raises its own error types on bad headers
        raise TeacherError(f"{path}: cannot read safetensors weights ({type(e).__name__}: {e})") from e
    sam = build_procedural_sam()
    try:
        sam.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    except RuntimeError as e:
        raise TeacherError(f"{path}: does not match {NAME}'s architecture: {' '.join(str(e).splitlines()[:3])}") from e
    return sam.eval(), digest


def build_procedural_teacher(checkpoint: str | None = None, batch_size: int = 1, expected_sha256: str | None = None):
    """The registered ``sam_tiny_procedural`` :class:`~san.teachers.sam.SamTeacher`.

    Args:
        checkpoint: another weights file of this architecture (for example a fresh training
            run's); ``None`` loads the shipped weights, SHA-256 checked against the model card.
        expected_sha256: digest ``checkpoint`` must have; by default the one in the model card
            beside it (``<name>.json``), if any.
    """
    from san.teachers.sam import SamTeacher

    path = WEIGHTS_FILE if checkpoint is None else Path(checkpoint)
    expected = expected_sha256
    if checkpoint is not None and expected is None:
        card = path.with_suffix(".json")
        expected = json.loads(card.read_text()).get("sha256") if card.is_file() else None
    sam, digest = load_procedural_sam(path, expected)
    info = TeacherInfo(NAME, ARCH.input_size, (ARCH.embedding_shape,), str(path.resolve()), digest, kind="procedural")
    return SamTeacher(sam, info, batch_size)
