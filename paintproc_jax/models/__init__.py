"""The video diffusion network: a DiT over space-time pixel patches with depth fusion.

    model = create_model(config.model, mesh)          # VideoDiT, parameters sharded on the mesh
    pred = model(x [B,F,H,W,3], t [B,F], cond, keep)   # cond: ref, depth, layers, medium, ref_medium

Files: `config.py` (settings, validation, sharding rules), `layers.py` (attention, MLP, patches,
positions), `depth_fusion.py` (depth encoder + gated cross-attention), `dit.py` (the network),
`sharding.py` (logical axes -> mesh), `flops.py` (FLOPs per clip for MFU).
"""

from paintproc_jax.models.config import ModelSpec, default_config, spec_from_config, validate
from paintproc_jax.models.dit import Block, VideoDiT, create_model

__all__ = ["Block", "ModelSpec", "VideoDiT", "create_model", "default_config", "spec_from_config", "validate"]
