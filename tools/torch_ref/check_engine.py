#!/usr/bin/python3
"""Compare the Vulkan engine's eps with the torch reference on a model folder.

  check_engine.py MODEL_DIR [--ddpm build/tools/ddpm] [--batch 4] [--seed 0]

Random x ~ N(0, 1) and timesteps spread over [0, 1000) go through both
(`ddpm eps` on one side, tools/torch_ref/unet.py on the other, float32 from
the same weights); prints max |err| / max(1, max |ref|) and exits 1 above
--tol (default 1e-3).
"""
import argparse
import os
import subprocess
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402
from unet import UNet2DModel  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("--ddpm", default="build/tools/ddpm")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tol", type=float, default=1e-3)
    a = ap.parse_args()
    model = UNet2DModel.from_pretrained(a.model).float().eval()
    size = model.config["sample_size"]
    c = model.config["in_channels"]
    g = torch.Generator().manual_seed(a.seed)
    x = torch.randn((a.batch, c, size, size), generator=g)
    t = torch.linspace(0, 999, a.batch).long()
    with torch.no_grad():
        want = model(x, t)
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "in.safetensors"), os.path.join(tmp, "out.safetensors")
        safetensors_io.save({"x": x, "t": t}, src)
        subprocess.run([a.ddpm, "eps", a.model, "--in", src, "--out", dst], check=True)
        got = safetensors_io.load(dst)[0]["eps"]
    err = (got - want).abs().max().item() / max(1.0, want.abs().max().item())
    print(f"{a.model}: eps of {a.batch} samples at t = {t.tolist()}: "
          f"max rel err {err:.3g} (tol {a.tol})")
    return 0 if err <= a.tol else 1


if __name__ == "__main__":
    sys.exit(main())
