#!/usr/bin/python3
"""Float64 reference of libddpm's variational bound (ddpm_nll, compute/likelihood.c).

Usage: nll_ref.py [GOLDEN_DIR] [-o tests/data/nll_tiny.json]

Computes, independently of the C code, every term of Ho et al. 2020's bound
(eq. 5; prior, T-1 Gaussian KLs, discretized-Gaussian decoder) in bits/dim for
two 8-bit test images on the tiny golden U-Net (tools/torch_ref's UNet2DModel,
run in float64) under two 20-step schedules (fixed_small and fixed_large), and
writes them as JSON for tests/test_nll.c.

Only x_t is shared with the C side: x_t = float32(sqrt(abar_t) x0 +
sqrt(1 - abar_t) n) with n = ddpm_noise(seed + b, t, i), the library's
Philox4x32-10 + Box-Muller generator reimplemented here (integer Philox in
numpy, the float32 Box-Muller through the C library's logf/sinf/cosf so the
values are bit-identical).  Everything else -- schedule in float64 from
float32 betas, posterior, KLs, exact normal CDF for the decoder bins -- is
computed here in float64.
"""
import argparse
import ctypes
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from unet import UNet2DModel  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SEED = 1234
SCHEDULES = {
    "fixed_small": {"_class_name": "DDPMScheduler", "num_train_timesteps": 20,
                    "beta_start": 0.002, "beta_end": 0.4, "beta_schedule": "linear",
                    "variance_type": "fixed_small", "prediction_type": "epsilon"},
    "fixed_large": {"_class_name": "DDPMScheduler", "num_train_timesteps": 20,
                    "beta_start": 0.002, "beta_end": 0.4, "beta_schedule": "linear",
                    "variance_type": "fixed_large", "prediction_type": "epsilon"},
}

# ---- ddpm_noise (compute/noise.c) ----------------------------------------

_libm = ctypes.CDLL("libm.so.6")
for _f in ("logf", "sinf", "cosf"):
    getattr(_libm, _f).restype = ctypes.c_float
    getattr(_libm, _f).argtypes = [ctypes.c_float]

M32 = np.uint64(0xFFFFFFFF)


def philox4x32_10(c0, c1, c2, c3, k0, k1):
    c = [np.asarray(v, dtype=np.uint64) for v in (c0, c1, c2, c3)]
    k0, k1 = np.uint64(k0), np.uint64(k1)
    for _ in range(10):
        p0 = np.uint64(0xD2511F53) * c[0]
        p1 = np.uint64(0xCD9E8D57) * c[2]
        n0 = ((p1 >> np.uint64(32)) ^ c[1] ^ k0) & M32
        n2 = ((p0 >> np.uint64(32)) ^ c[3] ^ k1) & M32
        c = [n0, p1 & M32, n2, p0 & M32]
        k0 = (k0 + np.uint64(0x9E3779B9)) & M32
        k1 = (k1 + np.uint64(0xBB67AE85)) & M32
    return c


def ddpm_noise(seed, stream, count):
    """ddpm_noise(seed, stream, i) for i = 0..count-1, as float32."""
    idx = np.arange(count, dtype=np.uint64)
    ctr = philox4x32_10(idx >> np.uint64(2), idx >> np.uint64(34),
                        np.full(count, stream, dtype=np.uint64), np.zeros(count, np.uint64),
                        seed & 0xFFFFFFFF, (seed >> 32) & 0xFFFFFFFF)
    pair = ((idx & np.uint64(3)) >> np.uint64(1)).astype(bool)
    a = np.where(pair, ctr[2], ctr[0])
    b = np.where(pair, ctr[3], ctr[1])
    inv = np.float32(1.0 / 16777216.0)
    u1 = ((a >> np.uint64(8)).astype(np.float32) + np.float32(1.0)) * inv
    u2 = (b >> np.uint64(8)).astype(np.float32) * inv
    out = np.empty(count, dtype=np.float32)
    two_pi = np.float32(6.283185307179586)
    for i in range(count):
        r = np.sqrt(np.float32(-2.0) * np.float32(_libm.logf(float(u1[i]))), dtype=np.float32)
        ang = np.float32(two_pi * u2[i])
        trig = _libm.sinf(float(ang)) if i & 1 else _libm.cosf(float(ang))
        out[i] = np.float32(r * np.float32(trig))
    return out

# ---- the bound ----------------------------------------------------------------


def schedule(cfg):
    T = cfg["num_train_timesteps"]
    betas = torch.linspace(cfg["beta_start"], cfg["beta_end"], T, dtype=torch.float32)
    beta = betas.double().numpy()
    alpha = 1.0 - beta
    abar = np.cumprod(alpha)
    abar_prev = np.concatenate([[1.0], abar[:-1]])
    post_var = beta * (1.0 - abar_prev) / (1.0 - abar)
    return T, beta, alpha, abar, abar_prev, post_var


def normal_kl(m1, v1, m2, v2):
    return 0.5 * (-1.0 + np.log(v2) - np.log(v1) + v1 / v2 + (m1 - m2) ** 2 / v2)


def decoder_nll(x, mean, sigma):
    """-log of the discretized Gaussian's bin mass, exact CDF via math.erfc."""
    cdf = np.vectorize(lambda z: 0.5 * math.erfc(-z / math.sqrt(2.0)))
    sf = np.vectorize(lambda z: 0.5 * math.erfc(z / math.sqrt(2.0)))
    plus = (x - mean + 1 / 255) / sigma
    minus = (x - mean - 1 / 255) / sigma
    mid = np.where(minus > 0, sf(minus) - sf(plus), cdf(plus) - cdf(minus))
    p = np.where(x < -0.999, cdf(plus), np.where(x > 0.999, sf(minus), mid))
    return -np.log(np.maximum(p, 1e-12))


def test_images():
    """Two 3x16x16 8-bit images: a smooth gradient and a hashed texture."""
    y, x = np.mgrid[0:16, 0:16]
    a = np.stack([(x * 17) % 256, (y * 17) % 256, ((x + y) * 8) % 256])
    i = np.arange(3 * 256).reshape(3, 16, 16)
    b = (i * 2654435761 >> 7) % 256
    b[0, 0, :4] = [0, 255, 1, 254]  # the edge bins
    return np.stack([a, b]).astype(np.uint8)


def bound(model, cfg, images):
    T, beta, alpha, abar, abar_prev, post_var = schedule(cfg)
    large = cfg["variance_type"] == "fixed_large"
    # x0 as the library receives it: float32 k / 127.5 - 1.
    x0 = (images.astype(np.float64) / 127.5 - 1.0).astype(np.float32).astype(np.float64)
    B = x0.shape[0]
    D = x0[0].size
    terms = np.zeros((B, T))
    prior = np.zeros(B)
    for b in range(B):
        aT = abar[T - 1]
        prior[b] = normal_kl(math.sqrt(aT) * x0[b], 1.0 - aT, 0.0, 1.0).sum() / (D * math.log(2))
        xts = []
        for t in range(T):
            n = ddpm_noise(SEED + b, t, D).astype(np.float64).reshape(x0[b].shape)
            xts.append((math.sqrt(abar[t]) * x0[b] + math.sqrt(1 - abar[t]) * n)
                       .astype(np.float32).astype(np.float64))
        xt = np.stack(xts)
        with torch.no_grad():
            eps = model(torch.from_numpy(xt), torch.arange(T)).numpy()
        for t in range(T):
            mean = (xt[t] - beta[t] / math.sqrt(1 - abar[t]) * eps[t]) / math.sqrt(alpha[t])
            if t == 0:
                nats = decoder_nll(x0[b], mean, math.sqrt(post_var[1])).sum()
            else:
                m1 = (beta[t] * math.sqrt(abar_prev[t]) / (1 - abar[t]) * x0[b]
                      + (1 - abar_prev[t]) * math.sqrt(alpha[t]) / (1 - abar[t]) * xt[t])
                v2 = beta[t] if large else post_var[t]
                nats = normal_kl(m1, post_var[t], mean, v2).sum()
            terms[b, t] = nats / (D * math.log(2))
    return prior, terms


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("golden", nargs="?", default=os.environ.get(
        "DDPM_GOLDEN_DIR", os.path.join(REPO, "..", "shared", "golden")))
    ap.add_argument("-o", "--output", default=os.path.join(REPO, "tests", "data", "nll_tiny.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = UNet2DModel.from_pretrained(os.path.join(args.golden, "tiny")).double()
    images = test_images()
    out = {"model": "tiny", "seed": SEED,
           "images": images.reshape(images.shape[0], -1).tolist(),
           "image_shape": list(images.shape[1:]),
           "noise_check": {f"{SEED + 1}/{t}": [float(v) for v in ddpm_noise(SEED + 1, t, 8)]
                           for t in (0, 19)},
           "cases": {}}
    for name, cfg in SCHEDULES.items():
        prior, terms = bound(model, cfg, images)
        total = prior + terms.sum(axis=1)
        out["cases"][name] = {"scheduler": cfg, "prior": prior.tolist(),
                              "terms": terms.tolist(), "bpd": total.tolist()}
        print(f"{name}: bits/dim {total.tolist()}, prior {prior.tolist()}, "
              f"decoder {terms[:, 0].tolist()}")
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
