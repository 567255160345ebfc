"""The `model` config section: sizes, attention mode, depth fusion, precision, sharding rules.

`ModelSpec` is its frozen (hashable) form that the network holds; `validate` checks a config (and,
given a mesh, that heads and tokens divide the mesh) before anything is compiled.
"""

from __future__ import annotations

import dataclasses

import ml_collections

from paintproc_jax import parallel
from paintproc_jax.program import MEDIA

ATTENTION_MODES = ("full", "factorized")
REMAT_POLICIES = ("none", "full", "dots", "dots_no_batch")
DTYPES = ("float32", "bfloat16")
ATTENTION_IMPLS = ("auto", "xla", "cudnn")

# Logical axis -> mesh axes. Parameters use embed/mlp/heads/...; activations use the act_* names
# and batch. FSDP shards parameters' embed axis, tensor parallelism their heads and mlp axes,
# context parallelism the token axis of activations.
DEFAULT_RULES = (
    ("batch", parallel.BATCH_AXES),
    ("act_seq", parallel.CONTEXT),
    ("act_embed", None),
    ("act_heads", parallel.TENSOR),
    ("act_mlp", parallel.TENSOR),
    ("embed", parallel.FSDP),
    ("mlp", parallel.TENSOR),
    ("heads", parallel.TENSOR),
    ("head_dim", None),
    ("mod", None),
    ("patch", None),
    ("vocab", None),
    ("vector", None),
    ("layers", None),
)


def default_config() -> ml_collections.ConfigDict:
    """A DiT-S-like model for 128 px clips of 1 reference + 16 generated frames."""
    c = ml_collections.ConfigDict()
    c.image_size = 128  # training resolution (any multiple of patch * 2**(depth_scales-1) works)
    c.frames = 16  # generated frames per clip, at most; the clip has 1 + frames (reference first)
    c.patch = 8  # spatial patch side in pixels
    c.tubelet = 1  # frames per space-time patch
    c.width = 384
    c.depth = 12  # transformer blocks
    c.heads = 6
    c.mlp_ratio = 4.0
    c.attention = "full"  # "full" space-time, or "factorized": spatial then temporal per block
    c.qk_norm = True
    c.depth_fusion = True  # gated cross-attention to depth tokens in every block
    c.depth_scales = 3  # depth tokens at patch, 2*patch, 4*patch, ...
    c.depth_layers = 3  # depth-layer masks fed to the depth encoder (data.layers)
    c.region_channels = 0  # optional region/segment map channels (cond["regions"] [B,H,W,R])
    c.ref_in_frames = False  # also add the reference's patch embedding to every generated frame's tokens (per position)
    c.phase_conditioning = True  # cond["phase"]: where a window starts in a longer process (diffusion.window)
    c.num_media = len(MEDIA)  # process media; id num_media is the dropped ("null") medium
    c.num_ref_media = len(MEDIA) + 1  # reference media: the media and the photo (data.config.PHOTO)
    c.dtype = "float32"  # compute dtype; "bfloat16" on accelerators (params stay float32)
    c.param_dtype = "float32"
    c.scan_layers = False  # stack blocks and lax.scan over them (fast compiles for deep models)
    c.remat = "none"  # rematerialisation per block: none | full | dots | dots_no_batch
    c.attention_impl = "auto"  # jax.nn.dot_product_attention: auto (cuDNN flash when it can) | xla | cudnn
    c.rules = DEFAULT_RULES
    return c


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Static, hashable model description (what the network keeps of its config)."""

    image_size: int
    frames: int
    patch: int
    tubelet: int
    width: int
    depth: int
    heads: int
    mlp_hidden: int
    attention: str
    qk_norm: bool
    depth_fusion: bool
    depth_scales: int
    depth_layers: int
    region_channels: int
    phase_conditioning: bool
    ref_in_frames: bool
    num_media: int
    num_ref_media: int
    dtype: str
    param_dtype: str
    scan_layers: bool
    remat: str
    attention_impl: str
    rules: tuple

    @property
    def head_dim(self) -> int:
        return self.width // self.heads

    @property
    def grid(self) -> int:
        """Patches per side at `image_size`."""
        return self.image_size // self.patch

    @property
    def patch_dim(self) -> int:
        """Pixels * channels in one space-time patch of generated frames."""
        return self.tubelet * self.patch * self.patch * 3


def spec_from_config(c: ml_collections.ConfigDict) -> ModelSpec:
    """Validates `c` and freezes it into a `ModelSpec`."""
    validate(c)
    return ModelSpec(
        image_size=int(c.image_size), frames=int(c.frames), patch=int(c.patch), tubelet=int(c.tubelet),
        width=int(c.width), depth=int(c.depth), heads=int(c.heads),
        mlp_hidden=int(round(c.width * c.mlp_ratio)), attention=c.attention, qk_norm=bool(c.qk_norm),
        depth_fusion=bool(c.depth_fusion), depth_scales=int(c.depth_scales), depth_layers=int(c.depth_layers),
        region_channels=int(c.region_channels), phase_conditioning=bool(c.phase_conditioning),
        ref_in_frames=bool(c.get("ref_in_frames", False)),  # configs saved before the option lack it
        num_media=int(c.num_media), num_ref_media=int(c.num_ref_media),
        dtype=c.dtype, param_dtype=c.param_dtype, scan_layers=bool(c.scan_layers), remat=c.remat,
        attention_impl=c.attention_impl, rules=tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in c.rules),
    )


def _choice(name, value, options):
    if value not in options:
        raise ValueError(f"model.{name} must be one of {options}, got {value!r}")


def validate(c: ml_collections.ConfigDict, mesh=None) -> None:
    """Raises ValueError naming the first bad model setting (and, with a mesh, what does not divide it)."""
    _choice("attention", c.attention, ATTENTION_MODES)
    _choice("remat", c.remat, REMAT_POLICIES)
    _choice("dtype", c.dtype, DTYPES)
    _choice("param_dtype", c.param_dtype, DTYPES)
    _choice("attention_impl", c.attention_impl, ATTENTION_IMPLS)
    for name in ("image_size", "frames", "patch", "tubelet", "width", "depth", "heads", "depth_scales"):
        if int(c[name]) < 1:
            raise ValueError(f"model.{name} must be >= 1, got {c[name]}")
    if c.width % c.heads:
        raise ValueError(f"model.width {c.width} is not divisible by model.heads {c.heads}")
    if (c.width // c.heads) % 2:
        raise ValueError(f"head dim {c.width // c.heads} (width / heads) must be even")
    if c.frames % c.tubelet:
        raise ValueError(f"model.frames {c.frames} is not a multiple of model.tubelet {c.tubelet}")
    unit = c.patch * 2 ** (c.depth_scales - 1 if c.depth_fusion else 0)
    if c.image_size % unit:
        raise ValueError(
            f"model.image_size {c.image_size} must be a multiple of patch * 2**(depth_scales-1) = {unit}"
        )
    if c.mlp_ratio <= 0:
        raise ValueError(f"model.mlp_ratio must be > 0, got {c.mlp_ratio}")
    if mesh is not None:
        tensor = mesh.shape.get(parallel.TENSOR, 1)
        if c.heads % tensor:
            raise ValueError(f"model.heads {c.heads} is not divisible by the mesh's tensor axis ({tensor})")
        mlp = int(round(c.width * c.mlp_ratio))
        if mlp % tensor:
            raise ValueError(f"MLP width {mlp} is not divisible by the mesh's tensor axis ({tensor})")
        context = mesh.shape.get(parallel.CONTEXT, 1)
        tokens = (c.image_size // c.patch) ** 2
        if tokens % context:
            raise ValueError(f"{tokens} tokens per frame do not divide the mesh's context axis ({context})")
        fsdp = mesh.shape.get(parallel.FSDP, 1)
        if c.width % fsdp:
            raise ValueError(f"model.width {c.width} is not divisible by the mesh's fsdp axis ({fsdp})")
