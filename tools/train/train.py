#!/usr/bin/python3
"""Train, evaluate, sample and export the small default DDPM (CPU, plain PyTorch).

  train.py train  --data /work/data/emoji32 --ckpt /work/data/ckpt [--export models/default]
  train.py eval   --ckpt /work/data/ckpt          (held-out vs training eps-MSE)
  train.py sample --ckpt /work/data/ckpt --out grid.png [--steps 1000]
  train.py export --ckpt /work/data/ckpt --out models/default
  train.py bench  [--threads N]                   (seconds per training step)

Training is DDPM L_simple: t ~ U{0..999}, x_t = sqrt(abar_t) x0 + sqrt(1-abar_t) eps,
loss = |eps - eps_theta(x_t, t)|^2, linear betas 1e-4..0.02, Adam (lr 2e-4, linear
warm-up), gradient clipping at 1, EMA of the weights, random horizontal flips.
Checkpoints (model, EMA, optimiser, step, RNG states) are written atomically to
CKPT/last.pt every --ckpt-minutes; losses go to CKPT/loss.csv. Stop with SIGTERM/SIGINT
(a final checkpoint is written) and resume by running the same command again.
The model is tools/torch_ref/unet.py's UNet2DModel; export writes a diffusers folder
(config.json, scheduler_config.json, fp16 diffusion_pytorch_model.safetensors) of the
EMA weights.
"""
import argparse
import copy
import csv
import json
import os
import random
import signal
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "torch_ref"))
from unet import UNet2DModel  # noqa: E402

# ~1.9M parameters: three levels (32, 16, 8 px), one attention level at 16x16 + mid.
MODEL_CONFIG = {
    "sample_size": 32, "in_channels": 3, "out_channels": 3,
    "center_input_sample": False, "time_embedding_type": "positional",
    "freq_shift": 0, "flip_sin_to_cos": True,
    "down_block_types": ["DownBlock2D", "AttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "AttnUpBlock2D", "UpBlock2D"],
    "block_out_channels": [32, 64, 96], "layers_per_block": 1,
    "mid_block_scale_factor": 1, "downsample_padding": 1, "downsample_type": "conv",
    "upsample_type": "conv", "dropout": 0.0, "act_fn": "silu",
    "attention_head_dim": None, "norm_num_groups": 16, "attn_norm_num_groups": None,
    "norm_eps": 1e-5, "resnet_time_scale_shift": "default", "add_attention": True,
    "class_embed_type": None, "num_class_embeds": None, "num_train_timesteps": None,
}

SCHEDULER_CONFIG = {
    "_class_name": "DDPMScheduler", "_diffusers_version": "0.31.0",
    "beta_end": 0.02, "beta_schedule": "linear", "beta_start": 0.0001,
    "clip_sample": True, "clip_sample_range": 1.0, "dynamic_thresholding_ratio": 0.995,
    "num_train_timesteps": 1000, "prediction_type": "epsilon",
    "rescale_betas_zero_snr": False, "sample_max_value": 1.0, "steps_offset": 0,
    "thresholding": False, "timestep_spacing": "leading", "trained_betas": None,
    "variance_type": "fixed_small",
}

T = 1000
BETAS = torch.linspace(1e-4, 0.02, T, dtype=torch.float32)
ALPHAS_CUMPROD = torch.cumprod(1.0 - BETAS, dim=0)


def load_images(path):
    """uint8 [N,H,W,3] .npy -> float tensor [N,3,H,W] in [-1, 1]."""
    a = np.load(path)
    return torch.from_numpy(a).permute(0, 3, 1, 2).float().div(127.5).sub(1.0).contiguous()


def q_sample(x0, t, noise):
    ab = ALPHAS_CUMPROD[t].view(-1, 1, 1, 1)
    return ab.sqrt() * x0 + (1 - ab).sqrt() * noise


def loss_fn(model, x0, gen=None):
    t = torch.randint(0, T, (x0.shape[0],), generator=gen)
    noise = torch.randn(x0.shape, generator=gen)
    return F.mse_loss(model(q_sample(x0, t, noise), t), noise)


def save_atomic(obj, path):
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_ckpt(ckpt_dir):
    path = os.path.join(ckpt_dir, "last.pt")
    return torch.load(path, map_location="cpu") if os.path.exists(path) else None


def ema_model_from(ckpt):
    model = UNet2DModel(**ckpt["config"])
    model.load_state_dict(ckpt["ema"])
    return model.eval()


def export(model, out, step=None):
    """Write a diffusers folder (fp16 weights) atomically enough for a reader."""
    tmp = out.rstrip("/") + ".tmp-export"
    model.save_pretrained(tmp, dtype=torch.float16)
    with open(os.path.join(tmp, "scheduler_config.json"), "w") as f:
        json.dump(SCHEDULER_CONFIG, f, indent=2, sort_keys=True)
        f.write("\n")
    os.makedirs(out, exist_ok=True)
    for name in ("config.json", "scheduler_config.json", "diffusion_pytorch_model.safetensors"):
        os.replace(os.path.join(tmp, name), os.path.join(out, name))
    os.rmdir(tmp)
    print(f"exported EMA weights{'' if step is None else f' of step {step}'} to {out}",
          flush=True)


def cmd_train(args):
    torch.set_num_threads(args.threads)
    os.makedirs(args.ckpt, exist_ok=True)
    data = load_images(os.path.join(args.data, "train.npy"))
    ckpt = load_ckpt(args.ckpt)
    config = ckpt["config"] if ckpt else dict(MODEL_CONFIG)
    if args.config and not ckpt:
        with open(args.config) as f:
            config.update(json.load(f))
    model = UNet2DModel(**config)
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    step = 0
    if ckpt:
        model.load_state_dict(ckpt["model"])
        ema.load_state_dict(ckpt["ema"])
        opt.load_state_dict(ckpt["opt"])
        step = ckpt["step"]
        torch.set_rng_state(ckpt["rng"]["torch"])
        np.random.set_state(ckpt["rng"]["numpy"])
        random.setstate(ckpt["rng"]["python"])
        print(f"resumed at step {step}", flush=True)
    else:
        torch.manual_seed(args.seed)
        np.random.seed(args.seed)
        random.seed(args.seed)
    nparam = sum(p.numel() for p in model.parameters())
    print(f"{nparam} parameters, {len(data)} training images, batch {args.batch}", flush=True)

    stop = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.append(1))

    def checkpoint():
        save_atomic({"config": config, "model": model.state_dict(), "ema": ema.state_dict(),
                     "opt": opt.state_dict(), "step": step, "args": vars(args),
                     "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
                             "python": random.getstate()}},
                    os.path.join(args.ckpt, "last.pt"))
        if args.export:
            export(ema, args.export, step)

    log_path = os.path.join(args.ckpt, "loss.csv")
    new_log = not os.path.exists(log_path)
    log = open(log_path, "a", newline="")
    writer = csv.writer(log)
    if new_log:
        writer.writerow(["step", "wall_s", "loss", "lr", "s_per_step"])
    t0 = last_ckpt = last_log = time.time()
    acc, nacc = 0.0, 0
    model.train()
    while step < args.steps and not stop:
        idx = torch.randint(0, len(data), (args.batch,))
        x0 = data[idx]
        flip = torch.rand(args.batch) < 0.5
        x0 = torch.where(flip.view(-1, 1, 1, 1), x0.flip(3), x0)
        lr = args.lr * min(1.0, (step + 1) / args.warmup)
        for g in opt.param_groups:
            g["lr"] = lr
        loss = loss_fn(model, x0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        decay = min(args.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.mul_(decay).add_(pm.detach(), alpha=1 - decay)
        acc += loss.item()
        nacc += 1
        now = time.time()
        if step % args.log_every == 0:
            writer.writerow([step, round(now - t0, 1), f"{acc / nacc:.5f}", f"{lr:.2e}",
                             f"{(now - last_log) / nacc:.3f}"])
            log.flush()
            print(f"step {step} loss {acc / nacc:.4f} {(now - last_log) / nacc:.3f} s/step",
                  flush=True)
            acc, nacc, last_log = 0.0, 0, now
        if now - last_ckpt > args.ckpt_minutes * 60:
            checkpoint()
            last_ckpt = time.time()
    checkpoint()
    log.close()
    print(f"stopped at step {step}", flush=True)


def eps_mse(model, x0, t, seed):
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn(x0.shape, generator=gen)
    tt = torch.full((x0.shape[0],), t, dtype=torch.long)
    total = 0.0
    with torch.no_grad():
        for i in range(0, len(x0), 128):
            xt = q_sample(x0[i:i + 128], tt[i:i + 128], noise[i:i + 128])
            total += F.mse_loss(model(xt, tt[i:i + 128]), noise[i:i + 128],
                                reduction="sum").item()
    return total / noise.numel()


def load_for_inference(args):
    if args.model:
        return UNet2DModel.from_pretrained(args.model)
    ckpt = load_ckpt(args.ckpt)
    if ckpt is None:
        raise SystemExit(f"no checkpoint in {args.ckpt}")
    print(f"checkpoint at step {ckpt['step']}")
    return ema_model_from(ckpt)


def cmd_eval(args):
    torch.set_num_threads(args.threads)
    model = load_for_inference(args)
    val = load_images(os.path.join(args.data, "val.npy"))
    train = load_images(os.path.join(args.data, "train.npy"))
    train = train[torch.randperm(len(train), generator=torch.Generator().manual_seed(0))
                  [:len(val)]]
    print(f"eps-MSE ({len(val)} held-out vs {len(train)} training images, same noise)")
    print("   t   held-out   training")
    for t in (50, 250, 500, 750):
        print(f"{t:4d}  {eps_mse(model, val, t, t):9.5f}  {eps_mse(model, train, t, t):9.5f}")


def ddpm_sample(model, n, size, steps, seed):
    """DDPMScheduler.step (leading spacing, fixed_small, clip_sample) ancestral sampling."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn((n, 3, size, size), generator=gen)
    stride = T // steps
    with torch.no_grad():
        for t in range(stride * (steps - 1), -1, -stride):
            eps = model(x, torch.full((n,), t, dtype=torch.long))
            ab = ALPHAS_CUMPROD[t]
            ab_prev = ALPHAS_CUMPROD[t - stride] if t - stride >= 0 else torch.tensor(1.0)
            alpha = ab / ab_prev
            x0 = ((x - (1 - ab).sqrt() * eps) / ab.sqrt()).clamp(-1, 1)
            x = (ab_prev.sqrt() * (1 - alpha) / (1 - ab)) * x0 \
                + (alpha.sqrt() * (1 - ab_prev) / (1 - ab)) * x
            if t > 0:
                var = ((1 - ab_prev) / (1 - ab) * (1 - alpha)).clamp(min=1e-20)
                x = x + var.sqrt() * torch.randn(x.shape, generator=gen)
    return x


def cmd_sample(args):
    from PIL import Image
    torch.set_num_threads(args.threads)
    model = load_for_inference(args)
    size = model.config["sample_size"]
    x = ddpm_sample(model, args.n, size, args.steps, args.seed)
    img = ((x.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    cols = int(np.ceil(np.sqrt(args.n)))
    rows = int(np.ceil(args.n / cols))
    grid = np.full((rows * size, cols * size, 3), 255, np.uint8)
    for i, im in enumerate(img):
        r, c = divmod(i, cols)
        grid[r * size:(r + 1) * size, c * size:(c + 1) * size] = im
    Image.fromarray(grid).resize((cols * size * args.zoom, rows * size * args.zoom),
                                 Image.NEAREST).save(args.out)
    print(f"wrote {args.out}")


def cmd_export(args):
    ckpt = load_ckpt(args.ckpt)
    if ckpt is None:
        raise SystemExit(f"no checkpoint in {args.ckpt}")
    export(ema_model_from(ckpt), args.out, ckpt["step"])


def cmd_bench(args):
    torch.set_num_threads(args.threads)
    config = dict(MODEL_CONFIG)
    if args.config:
        with open(args.config) as f:
            config.update(json.load(f))
    model = UNet2DModel(**config)
    opt = torch.optim.Adam(model.parameters(), lr=2e-4)
    x0 = torch.rand(args.batch, 3, 32, 32) * 2 - 1
    times = []
    for i in range(args.iters + 2):
        t0 = time.time()
        loss = loss_fn(model, x0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.time() - t0)
    nparam = sum(p.numel() for p in model.parameters())
    print(f"{nparam} params, batch {args.batch}, {args.threads} thread(s): "
          f"{np.median(times[2:]):.3f} s/step (median of {args.iters})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 2)[2])
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common(p):
        p.add_argument("--data", default="/work/data/emoji32", help="prepare_data.py output")
        p.add_argument("--ckpt", default="/work/data/ckpt", help="checkpoint folder")
        p.add_argument("--threads", type=int, default=1)
        return p

    p = common(sub.add_parser("train"))
    p.add_argument("--config", help="JSON file overriding MODEL_CONFIG (new runs only)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--warmup", type=int, default=500)
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--steps", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--ckpt-minutes", type=float, default=5.0)
    p.add_argument("--export", help="also export the EMA weights here at every checkpoint")
    p = common(sub.add_parser("eval"))
    p.add_argument("--model", help="diffusers folder instead of the checkpoint")
    p = common(sub.add_parser("sample"))
    p.add_argument("--model", help="diffusers folder instead of the checkpoint")
    p.add_argument("--out", default="samples.png")
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--zoom", type=int, default=2)
    p = common(sub.add_parser("export"))
    p.add_argument("--out", default="models/default")
    p = sub.add_parser("bench")
    p.add_argument("--config")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--iters", type=int, default=10)
    args = ap.parse_args()
    {"train": cmd_train, "eval": cmd_eval, "sample": cmd_sample, "export": cmd_export,
     "bench": cmd_bench}[args.cmd](args)


if __name__ == "__main__":
    main()
