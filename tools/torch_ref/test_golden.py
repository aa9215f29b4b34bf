#!/usr/bin/python3
"""Check tools/torch_ref/unet.py against the diffusers goldens.

Usage: test_golden.py [GOLDEN_DIR]   (default: $DDPM_GOLDEN_DIR or ../shared/golden
relative to the repository root). For each of tiny/ and tiny_b/, with both the current
and the old attention key names, runs unet.x/unet.t and compares unet.eps and every
dbg.* tensor: max |err| <= 1e-5 * max(1, max|ref|). Exits 1 on any failure.
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402
from unet import UNet2DModel  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REL_TOL = 1e-5


def check(folder, weights):
    model = UNet2DModel.from_pretrained(folder, weights)
    gold, _ = safetensors_io.load(os.path.join(folder, "golden.safetensors"))
    dbg = {}
    with torch.no_grad():
        eps = model(gold["unet.x"], gold["unet.t"], dbg=dbg)
    pairs = [("unet.eps", eps)] + [(k, dbg.get(k[4:])) for k in sorted(gold)
                                   if k.startswith("dbg.")]
    ok, worst = True, 0.0
    for name, got in pairs:
        ref = gold[name]
        if got is None or got.shape != ref.shape:
            print(f"  FAIL {name}: missing or shape {None if got is None else tuple(got.shape)}"
                  f" != {tuple(ref.shape)}")
            ok = False
            continue
        err = (got - ref).abs().max().item()
        bound = REL_TOL * max(1.0, ref.abs().max().item())
        worst = max(worst, err / bound * REL_TOL)
        if err > bound or name == "unet.eps":
            print(f"  {'FAIL' if err > bound else 'ok  '} {name}: max|err| {err:.3e}"
                  f" (bound {bound:.3e})")
        ok &= err <= bound
    print(f"  {len(pairs)} tensors, worst max|err|/max(1,max|ref|) = {worst:.3e}"
          f" -> {'PASS' if ok else 'FAIL'}")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("golden", nargs="?", default=os.environ.get(
        "DDPM_GOLDEN_DIR", os.path.join(REPO, "..", "shared", "golden")))
    args = ap.parse_args()
    torch.set_num_threads(1)
    ok = True
    for cfg in ("tiny", "tiny_b"):
        folder = os.path.join(args.golden, cfg)
        for weights in ("diffusion_pytorch_model.safetensors",
                        "diffusion_pytorch_model.oldkeys.safetensors"):
            print(f"{cfg} / {weights}")
            ok &= check(folder, weights)
    print("ALL PASS" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
