"""SAM 3 as a :class:`~san.teachers.base.Teacher`, over Meta's official ``sam3`` package (optional
extra ``pip install 'san[sam3]'``; SAM License). This module is the ONE place that imports ``sam3``
(:func:`import_sam3`); without the extra every SAM 3 teacher raises a :class:`TeacherError` saying
which package is missing and how to install it.

Variants (names for :func:`san.teachers.build_teacher`):

* ``sam3``: the released architecture (``sam3.model_builder.build_sam3_image_model``) loaded from a
  user-supplied checkpoint (``sam3.pt``, the file of the ``facebook/sam3`` release); nothing here
  downloads it. A missing, unreadable or foreign file raises a :class:`TeacherError` naming it
  (checked by :func:`read_sam3_checkpoint`, also from :mod:`san.teachers.preflight`).
* ``sam3_untrained``: the same full-size architecture with seeded random weights (860 M
  parameters), for timing only (Table 1).
* ``sam3_untrained_small``: the package's own classes (``ViT``, ``Sam3DualViTDetNeck``,
  ``VETextEncoder``, ``TransformerEncoderFusion``, ``TransformerDecoder``,
  ``UniversalSegmentationHead``, ``SequenceGeometryEncoder``, ``Sam3TrackerPredictor``'s SAM heads)
  at small sizes (:data:`SMALL`: 224 px input, width 64, 2 ViT blocks, a 2-layer text encoder),
  seeded random weights: the CPU test and demo teacher. Its masks mean nothing.

The split (read from ``sam3.model_builder`` and ``sam3.model.sam3_image_processor``): the
**backbone** that feature imitation replaces is the vision trunk (ViT) with its two feature-pyramid
necks (``Sam3DualViTDetNeck``: one neck for the concept head, one for the SAM-2-style point/box
head). The **heads**, run per prompt on cached or imitated features, are the text encoder plus the
concept head (geometry encoder, fusion encoder, DETR-style decoder, segmentation head), and the
point/box head (``sam_prompt_encoder`` + ``sam_mask_decoder`` of the interactive predictor).
``Sam3Processor.set_image`` stores per image exactly the maps :meth:`Sam3Teacher.embed` returns, so
that is where the line is drawn. Six maps, stride in pixels of the padded input for the full size
(1008 px input, 14 px patches, a ``g = 72`` cell trunk grid):

====  =====================  ========================  ==================================
map   shape (full size)      read by                   what it is
====  =====================  ========================  ==================================
0     256 x 288 x 288 (4g)   concept head              concept neck, scale 4 (pixel decoder)
1     256 x 144 x 144 (2g)   concept head              concept neck, scale 2 (pixel decoder)
2     256 x 72 x 72 (g)      concept head              concept neck, scale 1 (fusion encoder)
3     32 x 288 x 288 (4g)    point/box head            interactive neck scale 4, after ``conv_s0``
4     64 x 144 x 144 (2g)    point/box head            interactive neck scale 2, after ``conv_s1``
5     256 x 72 x 72 (g)      point/box head            interactive neck scale 1 (image embedding)
====  =====================  ========================  ==================================

With random weights maps 2 and 5 are identical: the package builds the interactive neck as a
``deepcopy`` of the concept neck (``Sam3DualViTDetNeck(add_sam2_neck=True)``), so the untrained
variants keep that initialisation (maps 3 and 4 still differ from 0 and 1 through ``conv_s0`` /
``conv_s1``); a released checkpoint has two trained necks.

The neck's fourth (0.5) scale is discarded by the package itself (``scalp=1``); position encodings
are functions of the map size only and are recomputed by :meth:`decode`. ``conv_s0`` / ``conv_s1``
(1x1 convolutions of the point/box decoder) are applied once per image by the package's own
``Sam3Processor.set_image``, so the cache stores their outputs (8x / 4x fewer channels).

Deviations from the package's own inference, all deliberate and documented:

* **Geometry**: the package squashes every image to a 1008 x 1008 square; here, as for every
  teacher of ``san``, the image's longest side is resized to the input size and the rest is
  zero-padded (:class:`~san.teachers.base.Teacher`), so feature cells stay square and the feature
  cache's valid-region bookkeeping applies. With a real checkpoint this is a mild domain shift for
  non-square images (not measured: no checkpoint can be downloaded on this project's machines).
  Normalisation is the package's (mean 0.5, std 0.5 on ``[0, 1]``).
* **Text prompts** return ONE mask per prompt (the pipeline tracks one object per prompt): the
  union of the concept head's instances whose probability (query score x presence score, as in
  ``Sam3Processor``) passes :attr:`Sam3Teacher.confidence_threshold` (0.5); when none passes, the
  best-scoring instance alone (so that a prompt always gives a mask, as a click does). The score is
  the best instance's probability.
* **Point/box prompts** go through the SAM-2-style heads exactly as ``SAM3InteractiveImagePredictor``
  does (``no_mem_embed`` added to the image embedding, boxes as two corner points with labels 2/3);
  masks are the logits thresholded at 0, without the predictor's optional hole filling.

CPU: the package hard-codes ``device="cuda"`` in several constructors (the sine position
encoding's precomputed cache, the transformer decoder's coordinate grid) and in defaults of its
mask post-processing, and pins memory (``Tensor.pin_memory``, which needs a CUDA driver) in the
geometry encoder. When CUDA is absent, :func:`cpu_device_mode` (a
``torch.overrides.TorchFunctionMode`` that rewrites ``device="cuda"`` arguments to ``"cpu"`` and
makes ``pin_memory`` a no-op) is
active while a model is built and while :meth:`Sam3Teacher.embed` / :meth:`Sam3Teacher.decode` run;
nothing else in ``san`` sees it. On a CUDA machine nothing is rewritten.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.resources
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode

from san.teachers.base import Decoded, Prompts, Teacher, TeacherError, TeacherInfo
from san.utils.io import sha256_file

UNTRAINED_SEED = 0
EXTRA_HINT = "install the optional extra: pip install 'san[sam3]' (the official sam3 package, psutil, open_clip_torch)"
BPE_FILE = "bpe_simple_vocab_16e6.txt.gz"
CHECKPOINT_NAME = "sam3.pt"
SAM3_NAMES = ("sam3", "sam3_untrained", "sam3_untrained_small")
_PATCH_KEY = "detector.backbone.vision_backbone.trunk.patch_embed.proj.weight"


def import_sam3():
    """Import and return the ``sam3`` package (the one import point of ``san``).

    Raises:
        TeacherError: the extra is not installed (names the missing module and the install command).
    """
    try:
        import psutil  # noqa: F401  (sam3 imports it without declaring it)

        sam3 = importlib.import_module("sam3")
        importlib.import_module("sam3.model_builder")
    except ModuleNotFoundError as e:
        raise TeacherError(f"SAM 3 teachers need the module {e.name!r}, which is not installed: {EXTRA_HINT}") from e
    return sam3


def bpe_path() -> str:
    """Path of the CLIP BPE vocabulary that ``open_clip_torch`` ships (``open_clip/bpe_simple_vocab_16e6.txt.gz``);
    the ``sam3`` wheel does not contain it and ``san`` does not vendor it."""
    try:
        path = importlib.resources.files("open_clip") / BPE_FILE
    except ModuleNotFoundError as e:
        raise TeacherError(f"SAM 3's text tokenizer needs open_clip_torch for {BPE_FILE}: {EXTRA_HINT}") from e
    if not path.is_file():
        raise TeacherError(f"{path}: open_clip_torch does not ship {BPE_FILE} (version changed?); {EXTRA_HINT}")
    return str(path)


class _CudaToCpu(TorchFunctionMode):
    """Rewrite ``device="cuda..."`` keyword arguments of torch functions to ``"cpu"``, and make
    ``Tensor.pin_memory()`` (page-locked memory needs a CUDA driver) return the tensor itself."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.Tensor.pin_memory:
            return args[0]
        device = kwargs.get("device")
        if device is not None and torch.device(device).type == "cuda":
            kwargs = {**kwargs, "device": "cpu"}
        return func(*args, **kwargs)


def cpu_device_mode(device: torch.device | str | None = None):
    """A context that maps the package's hard-coded ``device="cuda"`` to the CPU when the model
    lives on the CPU or CUDA is absent (module docstring); a no-op context on a CUDA device."""
    on_cpu = device is None or torch.device(device).type == "cpu"
    return _CudaToCpu() if on_cpu and not torch.cuda.is_available() else contextlib.nullcontext()


# ------------------------------------------------------------------------------------ sizes


@dataclass(frozen=True)
class Sam3Size:
    """Hyper-parameters that tell the SAM 3 variants apart (``full``: the package's own builder)."""

    input_size: int
    patch: int
    d_model: int
    vit_dim: int
    vit_depth: int
    vit_heads: int
    text_width: int
    text_layers: int
    text_heads: int
    fusion_layers: int
    decoder_layers: int
    queries: int
    geometry_layers: int

    @property
    def grid(self) -> int:
        return self.input_size // self.patch

    def feature_shapes(self) -> tuple[tuple[int, int, int], ...]:
        d, g = self.d_model, self.grid
        return (
            (d, 4 * g, 4 * g),
            (d, 2 * g, 2 * g),
            (d, g, g),
            (d // 8, 4 * g, 4 * g),
            (d // 4, 2 * g, 2 * g),
            (d, g, g),
        )


FULL = Sam3Size(1008, 14, 256, 1024, 32, 16, 1024, 24, 16, 6, 6, 200, 3)
"""The released architecture (values of ``sam3.model_builder``; built by the package itself)."""
SMALL = Sam3Size(224, 14, 64, 96, 2, 4, 64, 2, 4, 1, 2, 16, 1)
"""``sam3_untrained_small``: 224 px input (16 x 16 trunk grid), width 64, 2-block ViT."""

MAP_MEANING = (
    "concept (text) head: feature-pyramid neck scale 4 (pixel decoder input)",
    "concept (text) head: feature-pyramid neck scale 2 (pixel decoder input)",
    "concept (text) head: feature-pyramid neck scale 1 (fusion encoder and pixel decoder input)",
    "point/box head: interactive neck scale 4 after the mask decoder's conv_s0 (high-res features)",
    "point/box head: interactive neck scale 2 after the mask decoder's conv_s1 (high-res features)",
    "point/box head: interactive neck scale 1 (image embedding, before no_mem_embed)",
)
"""What each of the six maps is (written into the feature cache's attributes)."""


def _build_small(size: Sam3Size, bpe: str) -> nn.Module:
    """A ``Sam3Image`` of the package's classes at ``size`` (default, unseeded initialisation)."""
    from sam3.model.decoder import TransformerDecoder, TransformerDecoderLayer
    from sam3.model.encoder import TransformerEncoderFusion, TransformerEncoderLayer
    from sam3.model.geometry_encoders import SequenceGeometryEncoder
    from sam3.model.maskformer_segmentation import PixelDecoder, UniversalSegmentationHead
    from sam3.model.model_misc import MLP, DotProductScoring, TransformerWrapper
    from sam3.model.model_misc import MultiheadAttentionWrapper as MHA
    from sam3.model.necks import Sam3DualViTDetNeck
    from sam3.model.position_encoding import PositionEmbeddingSine
    from sam3.model.sam1_task_predictor import SAM3InteractiveImagePredictor
    from sam3.model.sam3_image import Sam3Image
    from sam3.model.sam3_tracking_predictor import Sam3TrackerPredictor
    from sam3.model.text_encoder_ve import VETextEncoder
    from sam3.model.tokenizer_ve import SimpleTokenizer
    from sam3.model.vitdet import ViT
    from sam3.model.vl_combiner import SAM3VLBackbone

    d, s = size.d_model, size

    def pos_enc(precompute: int | None = None):
        return PositionEmbeddingSine(
            num_pos_feats=d, normalize=True, temperature=10000, precompute_resolution=precompute
        )

    def mha(batch_first: bool):
        return MHA(num_heads=4, dropout=0.0, embed_dim=d, batch_first=batch_first)

    def enc_layer(**kw):
        return TransformerEncoderLayer(
            activation="relu", d_model=d, dim_feedforward=4 * d, dropout=0.0, pre_norm=True, **kw
        )

    trunk = ViT(
        img_size=s.input_size,
        pretrain_img_size=s.input_size,
        patch_size=s.patch,
        embed_dim=s.vit_dim,
        depth=s.vit_depth,
        num_heads=s.vit_heads,
        mlp_ratio=4.0,
        norm_layer="LayerNorm",
        drop_path_rate=0.0,
        qkv_bias=True,
        use_abs_pos=True,
        tile_abs_pos=True,
        global_att_blocks=(s.vit_depth - 1,),
        rel_pos_blocks=(),
        use_rope=True,
        use_interp_rope=True,
        window_size=8,
        pretrain_use_cls_token=True,
        retain_cls_token=False,
        ln_pre=True,
        ln_post=False,
        return_interm_layers=False,
        bias_patch_embed=False,
        use_act_checkpoint=False,
    )
    neck = Sam3DualViTDetNeck(trunk=trunk, position_encoding=pos_enc(s.input_size), d_model=d, add_sam2_neck=True)
    text = VETextEncoder(
        d_model=d,
        tokenizer=SimpleTokenizer(bpe_path=bpe),
        width=s.text_width,
        heads=s.text_heads,
        layers=s.text_layers,
        use_act_checkpoint=False,
    )
    backbone = SAM3VLBackbone(visual=neck, text=text, scalp=1)
    fusion = TransformerEncoderFusion(
        layer=enc_layer(
            pos_enc_at_attn=True,
            pos_enc_at_cross_attn_keys=False,
            pos_enc_at_cross_attn_queries=False,
            self_attention=mha(True),
            cross_attention=mha(True),
        ),
        num_layers=s.fusion_layers,
        d_model=d,
        num_feature_levels=1,
        frozen=False,
        use_act_checkpoint=False,
        add_pooled_text_to_img_feat=False,
        pool_text_with_mask=True,
    )
    decoder = TransformerDecoder(
        layer=TransformerDecoderLayer(
            activation="relu",
            d_model=d,
            dim_feedforward=4 * d,
            dropout=0.0,
            cross_attention=MHA(num_heads=4, dropout=0.0, embed_dim=d),
            n_heads=4,
            use_text_cross_attention=True,
        ),
        num_layers=s.decoder_layers,
        num_queries=s.queries,
        return_intermediate=True,
        box_refine=True,
        num_o2m_queries=0,
        dac=True,
        boxRPB="log",
        d_model=d,
        frozen=False,
        interaction_layer=None,
        dac_use_selfatt_ln=True,
        resolution=s.input_size,
        stride=s.patch,
        use_act_checkpoint=False,
        presence_token=True,
    )
    scoring = DotProductScoring(
        d_model=d,
        d_proj=d,
        prompt_mlp=MLP(
            input_dim=d,
            hidden_dim=4 * d,
            output_dim=d,
            num_layers=2,
            dropout=0.0,
            residual=True,
            out_norm=nn.LayerNorm(d),
        ),
    )
    seg_head = UniversalSegmentationHead(
        hidden_dim=d,
        upsampling_stages=3,
        aux_masks=False,
        presence_head=False,
        dot_product_scorer=None,
        act_ckpt=False,
        cross_attend_prompt=MHA(num_heads=4, dropout=0.0, embed_dim=d),
        pixel_decoder=PixelDecoder(num_upsampling_stages=3, interpolation_mode="nearest", hidden_dim=d),
    )
    geometry = SequenceGeometryEncoder(
        pos_enc=pos_enc(),
        encode_boxes_as_points=False,
        points_direct_project=True,
        points_pool=True,
        points_pos_enc=True,
        boxes_direct_project=True,
        boxes_pool=True,
        boxes_pos_enc=True,
        d_model=d,
        num_layers=s.geometry_layers,
        layer=enc_layer(
            pos_enc_at_attn=False,
            pos_enc_at_cross_attn_queries=False,
            pos_enc_at_cross_attn_keys=True,
            self_attention=mha(False),
            cross_attention=mha(False),
        ),
        use_act_ckpt=False,
        add_cls=True,
        add_post_encode_proj=True,
    )
    # The point/box heads (sam_prompt_encoder, sam_mask_decoder) are built by the tracker class
    # from its d_model; its video-memory parts are never called on single images, so an encoder-only
    # wrapper without layers and no mask-memory encoder stand in for them in this small variant.
    tracker = Sam3TrackerPredictor(
        image_size=s.input_size,
        num_maskmem=7,
        backbone=None,
        backbone_stride=s.patch,
        transformer=TransformerWrapper(encoder=nn.Identity(), decoder=None, d_model=d),
        maskmem_backbone=nn.Identity(),
        multimask_output_in_sam=True,
        forward_backbone_per_frame_for_eval=True,
        multimask_output_for_tracking=True,
        multimask_min_pt_num=0,
        multimask_max_pt_num=1,
        sam_mask_decoder_extra_args={
            "dynamic_multimask_via_stability": True,
            "dynamic_multimask_stability_delta": 0.05,
            "dynamic_multimask_stability_thresh": 0.98,
        },
    )
    return Sam3Image(
        backbone=backbone,
        transformer=TransformerWrapper(encoder=fusion, decoder=decoder, d_model=d),
        input_geometry_encoder=geometry,
        segmentation_head=seg_head,
        num_feature_levels=1,
        o2m_mask_predict=True,
        dot_prod_scoring=scoring,
        use_instance_query=False,
        multimask_output=True,
        inst_interactive_predictor=SAM3InteractiveImagePredictor(tracker),
        matcher=None,
    )


def _build_full(bpe: str) -> nn.Module:
    from sam3.model_builder import build_sam3_image_model

    return build_sam3_image_model(
        bpe_path=bpe,
        device="cpu",
        eval_mode=True,
        checkpoint_path=None,
        load_from_HF=False,
        enable_segmentation=True,
        enable_inst_interactivity=True,
        compile=False,
    )


def build_sam3_model(size: str, seed: int | None = UNTRAINED_SEED) -> nn.Module:
    """The package's ``Sam3Image`` (with its point/box predictor) on the CPU, in eval mode.

    Args:
        size: ``"full"`` (the package's builder) or ``"small"`` (:data:`SMALL`).
        seed: weight seed (the global RNG is left untouched); ``None``: the torch RNG as it is.
    """
    import_sam3()
    bpe = bpe_path()
    with contextlib.ExitStack() as stack:
        if seed is not None:
            stack.enter_context(torch.random.fork_rng(devices=[]))
            torch.manual_seed(seed)
        stack.enter_context(cpu_device_mode("cpu"))
        model = _build_full(bpe) if size == "full" else _build_small(SMALL, bpe)
        if seed is not None:
            init_uninitialised(model)
    return model.eval().requires_grad_(False)


@torch.no_grad()
def init_uninitialised(model: nn.Module) -> None:
    """Draw the parameters the package allocates with ``torch.empty`` / ``torch.Tensor(...)`` and
    leaves to its checkpoint (memory garbage otherwise, NaN included, and different on every run):
    the text encoder's ``positional_embedding`` (``N(0, 0.01^2)``) and ``text_projection``
    (``N(0, width^-1)``), and the fusion encoder's ``level_embed`` (``N(0, 1)``), CLIP's and
    Deformable DETR's initialisations. Raises :class:`TeacherError` if any weight is still not finite."""
    for name, p in model.named_parameters():
        leaf = name.rsplit(".", 1)[-1]
        if leaf == "positional_embedding":
            p.normal_(0.0, 0.01)
        elif leaf == "text_projection":
            p.normal_(0.0, p.shape[0] ** -0.5)
        elif leaf == "level_embed":
            p.normal_(0.0, 1.0)
    bad = [n for n, p in model.named_parameters() if not bool(torch.isfinite(p).all())]
    if bad:
        raise TeacherError(f"SAM 3: weights left uninitialised by the package: {', '.join(bad[:5])}")


# ------------------------------------------------------------------------------ checkpoints


def read_sam3_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read and check a released SAM 3 checkpoint (``sam3.pt``) before any model is built.

    The released file is a state dict (or ``{"model": state dict}``) whose image-model keys start
    with ``detector.`` and whose interactive-tracker keys start with ``tracker.``; the full-size trunk
    has a ``1024 x 3 x 14 x 14`` patch embedding.

    Raises:
        TeacherError: naming ``path`` when the file is missing, unreadable (corrupt or truncated),
            not a SAM 3 state dict, or of another size.
    """
    path = Path(path)
    if not path.is_file():
        raise TeacherError(
            f"{path}: SAM 3 checkpoint not found (the released file is {CHECKPOINT_NAME} of facebook/sam3; download it yourself)"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:  # the unpickler raises anything on garbage or a cut-off file
        raise TeacherError(
            f"{path}: cannot read SAM 3 checkpoint, the file is corrupt or truncated ({type(e).__name__}: {e})"
        ) from e
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict):
        raise TeacherError(f"{path}: expected a SAM 3 state dict, found a {type(state).__name__}")
    weight = state.get(_PATCH_KEY)
    if not isinstance(weight, torch.Tensor) or not any(k.startswith("tracker.") for k in state):
        raise TeacherError(f"{path}: not a SAM 3 checkpoint (no {_PATCH_KEY} and tracker.* weights; a SAM 1/2 file?)")
    want = (FULL.vit_dim, 3, FULL.patch, FULL.patch)
    if tuple(weight.shape) != want:
        raise TeacherError(f"{path}: wrong architecture: patch embedding {tuple(weight.shape)}, SAM 3 has {want}")
    return state


def load_sam3_checkpoint(model: nn.Module, state: dict[str, torch.Tensor], path: str | os.PathLike) -> None:
    """Load a released-layout state dict into ``model`` (``detector.*`` -> the image model,
    ``tracker.*`` -> ``inst_interactive_predictor.model.*``, the layout the package's own loader
    maps). Unlike the package's loader, which only prints them, missing weights are an error.

    Raises:
        TeacherError: naming ``path`` when a weight of the model is missing or has another shape.
    """
    mapped = {k.removeprefix("detector."): v for k, v in state.items() if k.startswith("detector.")}
    mapped.update(
        {
            "inst_interactive_predictor.model." + k.removeprefix("tracker."): v
            for k, v in state.items()
            if k.startswith("tracker.")
        }
    )
    own = model.state_dict()
    missing = [k for k in own if k not in mapped]
    wrong = [k for k in own if k in mapped and tuple(mapped[k].shape) != tuple(own[k].shape)]
    if missing or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} weight(s) missing (first: {', '.join(missing[:3])})")
        if wrong:
            k = wrong[0]
            parts.append(
                f"{len(wrong)} of another shape (first: {k} {tuple(mapped[k].shape)} vs {tuple(own[k].shape)})"
            )
        raise TeacherError(f"{path}: does not match the SAM 3 image model: {'; '.join(parts)}")
    model.load_state_dict({k: mapped[k] for k in own}, strict=True)


# -------------------------------------------------------------------------------- teacher


class Sam3Teacher(Teacher):
    """A :class:`Teacher` around the package's ``Sam3Image`` (module docstring: maps, heads, geometry).

    Args:
        model: the ``Sam3Image`` with its ``inst_interactive_predictor``.
        info: name, input size, the six feature shapes, checkpoint, kind.
        batch_size: most images per backbone pass.
        confidence_threshold: text prompts keep the concept head's instances above this probability.
    """

    supports_text = True

    def __init__(self, model: nn.Module, info: TeacherInfo, batch_size: int = 1, confidence_threshold: float = 0.5):
        super().__init__(info, (127.5, 127.5, 127.5), (127.5, 127.5, 127.5), batch_size)
        if model.inst_interactive_predictor is None:
            raise TeacherError(f"teacher {info.name!r}: the SAM 3 model was built without its point/box predictor")
        self.model = model.eval().requires_grad_(False)
        self.confidence_threshold = float(confidence_threshold)
        self._text_cache: OrderedDict[str, dict] = OrderedDict()

    @property
    def tracker(self) -> nn.Module:
        return self.model.inst_interactive_predictor.model

    def embed(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``Bx3xSxS`` -> the six maps of the module docstring (both necks, ``conv_s0``/``conv_s1`` applied)."""
        with cpu_device_mode(self.device):
            out = self.model.backbone.forward_image(x)
            concept = list(out["backbone_fpn"])
            inter = list(out["sam2_backbone_out"]["backbone_fpn"])
            decoder = self.tracker.sam_mask_decoder
            return [*concept, decoder.conv_s0(inter[0]), decoder.conv_s1(inter[1]), inter[2]]

    def text_features(self, text: str) -> dict:
        """The text encoder's output for ``text`` (kept for the 16 most recent prompts)."""
        if text in self._text_cache:
            self._text_cache.move_to_end(text)
            return self._text_cache[text]
        with cpu_device_mode(self.device):
            out = self.model.backbone.forward_text([text], device=self.device)
        self._text_cache[text] = out
        while len(self._text_cache) > 16:
            self._text_cache.popitem(last=False)
        return out

    def _to_image(self, logits: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        """``KxhxW`` logits over the padded square -> ``KxHxW`` at the original image size."""
        size = self.info.input_size
        input_hw = self.transform.get_preprocess_shape(hw[0], hw[1], size)
        full = F.interpolate(logits[None].float(), (size, size), mode="bilinear", align_corners=False)
        return F.interpolate(full[..., : input_hw[0], : input_hw[1]], hw, mode="bilinear", align_corners=False)[0]

    @torch.no_grad()
    def decode(
        self,
        features: Sequence[torch.Tensor],
        prompts: Prompts,
        image_size: Sequence[int],
        multimask_output: bool = False,
        mask_input: torch.Tensor | None = None,
    ) -> Decoded:
        """Masks from the six maps: a text prompt goes to the concept head (one mask, the union of
        the instances found; ``multimask_output`` and ``mask_input`` do not apply), clicks and a box
        to the point/box head. See :meth:`Teacher.decode` and the module docstring."""
        maps = self._prepare_features(features)
        hw = (int(image_size[0]), int(image_size[1]))
        with cpu_device_mode(self.device):
            if prompts.text is not None:
                if prompts.points.shape[0] or prompts.box is not None:
                    raise TeacherError(
                        f"teacher {self.info.name!r}: give a text prompt or clicks/a box, not both in one prompt"
                    )
                return self._decode_text(maps[:3], prompts.text, hw)
            return self._decode_points(maps[3:], prompts, hw, multimask_output, mask_input)

    def _decode_text(self, maps: list[torch.Tensor], text: str, hw: tuple[int, int]) -> Decoded:
        from sam3.model.data_misc import FindStage
        from sam3.model.geometry_encoders import Prompt

        position = self.model.backbone.vision_backbone.position_encoding
        backbone_out = {
            "backbone_fpn": maps,
            "vision_pos_enc": [position(m).to(m.dtype) for m in maps],
            "vision_features": maps[-1],
            **self.text_features(text),
        }
        ids = torch.zeros(1, dtype=torch.long, device=self.device)
        find = FindStage(
            img_ids=ids,
            text_ids=ids,
            input_boxes=None,
            input_boxes_mask=None,
            input_boxes_label=None,
            input_points=None,
            input_points_mask=None,
        )
        geometric = Prompt(
            box_embeddings=torch.zeros(0, 1, 4, device=self.device),
            box_mask=torch.zeros(1, 0, dtype=torch.bool, device=self.device),
        )
        out = self.model.forward_grounding(
            backbone_out=backbone_out, find_input=find, find_target=None, geometric_prompt=geometric
        )
        probs = (out["pred_logits"].sigmoid() * out["presence_logit_dec"].sigmoid().unsqueeze(1)).reshape(-1)
        keep = probs > self.confidence_threshold
        if not bool(keep.any()):
            keep = probs == probs.max()
        logits = out["pred_masks"][0][keep]
        low_res = logits.amax(0, keepdim=True)  # union of the kept instances' masks
        masks = self._to_image(low_res, hw) > 0
        return Decoded(masks, probs[keep].max().reshape(1), low_res)

    def _decode_points(
        self,
        maps: list[torch.Tensor],
        prompts: Prompts,
        hw: tuple[int, int],
        multimask_output: bool,
        mask_input: torch.Tensor | None,
    ) -> Decoded:
        tracker = self.tracker
        high_res, embedding = maps[:2], maps[2]
        embedding = embedding + tracker.no_mem_embed.reshape(1, -1, 1, 1)
        points, box = self.prompts_to_input(prompts, hw)
        coords, labels = points[None], prompts.labels.to(self.device, torch.int32)[None]
        if box is not None:
            corners = box.reshape(1, 2, 2)
            corner_labels = torch.tensor([[2, 3]], dtype=torch.int32, device=self.device)
            coords, labels = torch.cat([corners, coords], 1), torch.cat([corner_labels, labels], 1)
        if mask_input is not None:
            mask_input = (
                torch.as_tensor(mask_input).to(self.device, torch.float32).reshape(1, 1, *mask_input.shape[-2:])
            )
        sparse, dense = tracker.sam_prompt_encoder(points=(coords, labels), boxes=None, masks=mask_input)
        low_res, scores, _, _ = tracker.sam_mask_decoder(
            image_embeddings=embedding,
            image_pe=tracker.sam_prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=multimask_output,
            repeat_image=False,
            high_res_features=high_res,
        )
        low_res = low_res[0].clamp(-32.0, 32.0)
        return Decoded(self._to_image(low_res, hw) > 0, scores[0].float(), low_res)


# -------------------------------------------------------------------------------- builders


def _info(name: str, size: Sam3Size, checkpoint: str | None = None, digest: str | None = None) -> TeacherInfo:
    kind = "sam" if checkpoint else "untrained"
    return TeacherInfo(name, size.input_size, size.feature_shapes(), checkpoint, digest, kind=kind)


def build_sam3_teacher(name: str, checkpoint: str | os.PathLike | None = None, batch_size: int = 1) -> Sam3Teacher:
    """The SAM 3 teacher ``name`` (:data:`SAM3_NAMES`), on the CPU.

    Raises:
        TeacherError: the extra is missing; ``sam3`` without a checkpoint, or a bad checkpoint file
            (:func:`read_sam3_checkpoint`); an untrained variant given a checkpoint.
    """
    if name not in SAM3_NAMES:
        raise TeacherError(f"unknown SAM 3 teacher {name!r} (known: {', '.join(SAM3_NAMES)})")
    import_sam3()
    if name != "sam3":
        if checkpoint is not None:
            raise TeacherError(f"teacher {name!r} is untrained and takes no checkpoint (got {checkpoint})")
        size = "small" if name.endswith("small") else "full"
        return Sam3Teacher(build_sam3_model(size), _info(name, SMALL if size == "small" else FULL), batch_size)
    if checkpoint is None:
        raise TeacherError(
            f"teacher 'sam3' needs a checkpoint: set teacher.checkpoint to the path of {CHECKPOINT_NAME}"
        )
    state = read_sam3_checkpoint(checkpoint)
    model = build_sam3_model("full", seed=None)
    load_sam3_checkpoint(model, state, checkpoint)
    del state
    info = _info("sam3", FULL, str(Path(checkpoint).resolve()), sha256_file(checkpoint))
    return Sam3Teacher(model, info, batch_size)
