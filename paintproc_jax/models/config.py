"""The `model` config section: sizes, attention mode, depth fusion, precision, sharding rules.

`ModelSpec` is the one source of the fields, their types and defaults; `default_config()` is its
ConfigDict form, and `spec_from_config` / `validate` check a config (and, given a mesh, that heads
and tokens divide the mesh) before anything is compiled.
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
OUTPUT_HEADS = ("direct", "ref_mix")

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


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """The model section, typed: the one source of its fields and defaults (a DiT-S-like model for
    128 px clips of 1 reference + 16 generated frames). Frozen and hashable, so the network holds it
    as static configuration; `default_config()` is its ConfigDict form for `--config.model.x=y`."""

    image_size: int = 128  # training resolution (any multiple of patch * 2**(depth_scales-1) works)
    frames: int = 16  # generated frames per clip, at most; the clip has 1 + frames (reference first)
    patch: int = 8  # spatial patch side in pixels
    tubelet: int = 1  # frames per space-time patch
    width: int = 384
    depth: int = 12  # transformer blocks
    heads: int = 6
    mlp_ratio: float = 4.0
    attention: str = "full"  # "full" space-time, or "factorized": spatial then temporal per block
    qk_norm: bool = True
    depth_fusion: bool = True  # gated cross-attention to depth tokens in every block
    depth_scales: int = 3  # depth tokens at patch, 2*patch, 4*patch, ...
    depth_layers: int = 3  # depth-layer masks fed to the depth encoder (data.layers)
    region_channels: int = 0  # optional region/segment map channels (cond["regions"] [B,H,W,R])
    ref_in_frames: bool = False  # also add the reference's patch embedding to every generated frame's tokens (per position)
    # "direct": the head predicts the target per pixel. "ref_mix" (x0 objectives only): per pixel and
    # channel a gate g and a colour c, x0 = sigmoid(g) * ref + (1 - sigmoid(g)) * c, so painted regions
    # take the reference's detail inside a patch and the head learns where, and how much, is painted.
    output_head: str = "direct"
    phase_conditioning: bool = True  # cond["phase"]: where a window starts in a longer process (diffusion.window)
    num_media: int = len(MEDIA)  # process media; id num_media is the dropped ("null") medium
    num_ref_media: int = len(MEDIA) + 1  # reference media: the media and the photo (data.config.PHOTO)
    dtype: str = "float32"  # compute dtype; "bfloat16" on accelerators (params stay float32)
    param_dtype: str = "float32"
    scan_layers: bool = False  # stack blocks and lax.scan over them (fast compiles for deep models)
    remat: str = "none"  # rematerialisation per block: none | full | dots | dots_no_batch
    attention_impl: str = "auto"  # jax.nn.dot_product_attention: auto (cuDNN flash when it can) | xla | cudnn
    rules: tuple = DEFAULT_RULES  # logical axis -> mesh axes

    @property
    def mlp_hidden(self) -> int:
        return int(round(self.width * self.mlp_ratio))

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

    def check(self, mesh=None) -> ModelSpec:
        """Raises ValueError naming the first bad setting (and, with a mesh, what does not divide it); returns self."""
        _choice("attention", self.attention, ATTENTION_MODES)
        _choice("remat", self.remat, REMAT_POLICIES)
        _choice("output_head", self.output_head, OUTPUT_HEADS)
        _choice("dtype", self.dtype, DTYPES)
        _choice("param_dtype", self.param_dtype, DTYPES)
        _choice("attention_impl", self.attention_impl, ATTENTION_IMPLS)
        for name in ("image_size", "frames", "patch", "tubelet", "width", "depth", "heads", "depth_scales"):
            if getattr(self, name) < 1:
                raise ValueError(f"model.{name} must be >= 1, got {getattr(self, name)}")
        if self.width % self.heads:
            raise ValueError(f"model.width {self.width} is not divisible by model.heads {self.heads}")
        if self.head_dim % 2:
            raise ValueError(f"head dim {self.head_dim} (width / heads) must be even")
        if self.frames % self.tubelet:
            raise ValueError(f"model.frames {self.frames} is not a multiple of model.tubelet {self.tubelet}")
        unit = self.patch * 2 ** (self.depth_scales - 1 if self.depth_fusion else 0)
        if self.image_size % unit:
            raise ValueError(f"model.image_size {self.image_size} must be a multiple of patch * 2**(depth_scales-1) = {unit}")
        if self.mlp_ratio <= 0:
            raise ValueError(f"model.mlp_ratio must be > 0, got {self.mlp_ratio}")
        if mesh is not None:
            tensor = mesh.shape.get(parallel.TENSOR, 1)
            if self.heads % tensor:
                raise ValueError(f"model.heads {self.heads} is not divisible by the mesh's tensor axis ({tensor})")
            if self.mlp_hidden % tensor:
                raise ValueError(f"MLP width {self.mlp_hidden} is not divisible by the mesh's tensor axis ({tensor})")
            context = mesh.shape.get(parallel.CONTEXT, 1)
            if self.grid**2 % context:
                raise ValueError(f"{self.grid ** 2} tokens per frame do not divide the mesh's context axis ({context})")
            fsdp = mesh.shape.get(parallel.FSDP, 1)
            if self.width % fsdp:
                raise ValueError(f"model.width {self.width} is not divisible by the mesh's fsdp axis ({fsdp})")
        return self


# Named model sizes (`model_size` of an experiment config): ModelSpec fields over its defaults.
# The DiT family's names (S/B/L) and patch size; "cpu" and "tiny" are the small CPU models.
MODEL_SIZES = {
    "tiny": dict(width=64, depth=2, heads=4, patch=4, mlp_ratio=2.0, depth_scales=2),
    "cpu": dict(width=192, depth=4, heads=6, patch=8, mlp_ratio=3.0, depth_scales=2),
    "S/8": dict(width=384, depth=12, heads=6, patch=8),
    "B/8": dict(width=768, depth=12, heads=12, patch=8),
    "B/16": dict(width=768, depth=12, heads=12, patch=16),
    "L/16": dict(width=1024, depth=24, heads=16, patch=16),
}

_FIELDS = {f.name: f for f in dataclasses.fields(ModelSpec)}
_CAST = {"int": int, "float": float, "bool": bool, "str": str}


def default_config() -> ml_collections.ConfigDict:
    """`ModelSpec()` as a ConfigDict: the model section of every experiment config."""
    return ml_collections.ConfigDict(dataclasses.asdict(ModelSpec()))


def spec_from_config(c, mesh=None) -> ModelSpec:
    """A model config (ConfigDict or dict; fields it lacks, as in configs saved before they existed,
    take their defaults) -> a checked `ModelSpec` (with `mesh`: also that it divides the mesh)."""
    def value(name, field):
        if name not in c:
            return field.default
        v = c[name]
        if name == "rules":  # JSON gives lists
            return tuple((k, tuple(a) if isinstance(a, list) else a) for k, a in v)
        return _CAST[field.type](v)

    return ModelSpec(**{name: value(name, f) for name, f in _FIELDS.items()}).check(mesh)


def _choice(name, value, options):
    if value not in options:
        raise ValueError(f"model.{name} must be one of {options}, got {value!r}")


def validate(c: ml_collections.ConfigDict, mesh=None) -> None:
    """Raises ValueError naming the first bad model setting (and, with a mesh, what does not divide it)."""
    spec_from_config(c, mesh)
