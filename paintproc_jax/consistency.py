"""The rules that tie a config's sections together (clip length = 1 + model frames, image size,
depth layers, tubelet): a leaf module, so presets and the train config checks both import it."""

from __future__ import annotations

import ml_collections


def check_consistent(c: ml_collections.ConfigDict) -> None:
    """Raises ValueError where the data, model and diffusion sections disagree."""
    d, m = c.data, c.model
    if d.frames < m.frames + 1:
        raise ValueError(
            f"data.frames ({d.frames}) must be at least model.frames + 1 ({m.frames + 1}): clips hold the "
            "reference and the generated frames (longer clips train on windows of model.frames)"
        )
    if d.frames > m.frames + 1 and c.diffusion.window != m.frames:
        raise ValueError(
            f"data.frames ({d.frames}) is longer than model.frames + 1: set diffusion.window={m.frames} to "
            "train on windows of the longer processes"
        )
    if (d.frames - 1) % m.tubelet:
        raise ValueError(f"data.frames - 1 ({d.frames - 1}) must be a multiple of model.tubelet ({m.tubelet})")
    if d.size != m.image_size:
        raise ValueError(f"data.size ({d.size}) must equal model.image_size ({m.image_size})")
    if m.depth_fusion and d.layers != m.depth_layers:
        raise ValueError(f"data.layers ({d.layers}) must equal model.depth_layers ({m.depth_layers})")
    if c.diffusion.tubelet != m.tubelet:
        raise ValueError(f"diffusion.tubelet ({c.diffusion.tubelet}) must equal model.tubelet ({m.tubelet})")
    if m.get("output_head", "direct") == "ref_mix" and c.diffusion.objective != "flow_x0":
        raise ValueError(
            f"model.output_head='ref_mix' predicts x0 as a mix of the reference and a colour: it needs "
            f"diffusion.objective='flow_x0', not {c.diffusion.objective!r}"
        )
