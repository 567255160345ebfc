"""Image fidelity: PSNR and SSIM (Wang et al. 2004, Gaussian window 11 / sigma 1.5) in jnp.

Images are [..., H, W, 3] in [0, 1]; results are per image [...].
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def psnr(x, y, max_value: float = 1.0) -> jax.Array:
    """Peak signal-to-noise ratio in dB (capped at 100 dB for identical images)."""
    mse = jnp.mean((jnp.asarray(x, jnp.float32) - jnp.asarray(y, jnp.float32)) ** 2, axis=(-3, -2, -1))
    return jnp.minimum(10.0 * jnp.log10(max_value**2 / jnp.maximum(mse, 1e-10)), 100.0)


def _gaussian(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    r = np.arange(size, dtype=np.float32) - (size - 1) / 2
    g = np.exp(-0.5 * (r / sigma) ** 2)
    return g / g.sum()


def _blur(x, g):  # separable Gaussian, 'valid' borders as in the reference SSIM; x [N, H, W, C]
    n, h, w, c = x.shape
    k = len(g)
    x = jnp.moveaxis(x, -1, 1).reshape(n * c, h, w, 1)
    x = jax.lax.conv_general_dilated(x, jnp.asarray(g).reshape(k, 1, 1, 1), (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    x = jax.lax.conv_general_dilated(x, jnp.asarray(g).reshape(1, k, 1, 1), (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return jnp.moveaxis(x.reshape(n, c, h - k + 1, w - k + 1), 1, -1)


def ssim(x, y, max_value: float = 1.0) -> jax.Array:
    """Mean structural similarity over pixels and channels (1 = identical)."""
    x, y = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)
    lead = x.shape[:-3]
    x, y = x.reshape((-1,) + x.shape[-3:]), y.reshape((-1,) + y.shape[-3:])
    if min(x.shape[1:3]) < 11:
        raise ValueError(f"SSIM needs images of at least 11x11 pixels, got {x.shape[1:3]}")
    g = _gaussian()
    c1, c2 = (0.01 * max_value) ** 2, (0.03 * max_value) ** 2
    mx, my = _blur(x, g), _blur(y, g)
    sxx, syy, sxy = _blur(x * x, g) - mx**2, _blur(y * y, g) - my**2, _blur(x * y, g) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))
    return jnp.mean(s, axis=(1, 2, 3)).reshape(lead)
