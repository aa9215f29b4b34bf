"""Plain-PyTorch reference of diffusers' UNet2DModel (diffusers 0.31 semantics).

Only what the DDPM-style configs use: positional time embedding, DownBlock2D /
AttnDownBlock2D / UpBlock2D / AttnUpBlock2D, conv down/up sampling, UNetMidBlock2D,
resnet_time_scale_shift "default", SiLU. Parameter names equal diffusers' state dict,
so diffusion_pytorch_model.safetensors loads directly (old attention key names too).

    model = UNet2DModel.from_pretrained("path/to/folder")
    dbg = {}
    eps = model(x, t, dbg=dbg)   # dbg gets "time_proj", "down_blocks.0.resnets.1", ...
"""
import json
import math
import os

import torch
import torch.nn.functional as F
from torch import nn

try:
    from . import safetensors_io
except ImportError:  # run as a plain script directory
    import safetensors_io

# Defaults of diffusers' UNet2DModel.__init__ (v0.31), in the order it writes them.
DEFAULT_CONFIG = {
    "sample_size": None, "in_channels": 3, "out_channels": 3,
    "center_input_sample": False, "time_embedding_type": "positional",
    "freq_shift": 0, "flip_sin_to_cos": True,
    "down_block_types": ["DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"],
    "up_block_types": ["AttnUpBlock2D", "AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"],
    "block_out_channels": [224, 448, 672, 896], "layers_per_block": 2,
    "mid_block_scale_factor": 1, "downsample_padding": 1, "downsample_type": "conv",
    "upsample_type": "conv", "dropout": 0.0, "act_fn": "silu",
    "attention_head_dim": 8, "norm_num_groups": 32, "attn_norm_num_groups": None,
    "norm_eps": 1e-5, "resnet_time_scale_shift": "default", "add_attention": True,
    "class_embed_type": None, "num_class_embeds": None, "num_train_timesteps": None,
}

OLD_ATTN_KEYS = {"query": "to_q", "key": "to_k", "value": "to_v", "proj_attn": "to_out.0"}


def timestep_embedding(t, dim, flip_sin_to_cos, shift, max_period=10000):
    """diffusers.models.embeddings.get_timestep_embedding (scale 1)."""
    half = dim // 2
    exponent = -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device)
    exponent = exponent / (half - shift)
    emb = t[:, None].float() * torch.exp(exponent)[None, :]
    emb = torch.cat([torch.sin(emb), torch.cos(emb)], dim=-1)
    if flip_sin_to_cos:
        emb = torch.cat([emb[:, half:], emb[:, :half]], dim=-1)
    if dim % 2 == 1:
        emb = F.pad(emb, (0, 1, 0, 0))
    return emb


class TimestepEmbedding(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.linear_1 = nn.Linear(cin, cout)
        self.linear_2 = nn.Linear(cout, cout)

    def forward(self, x):
        return self.linear_2(F.silu(self.linear_1(x)))


class ResnetBlock2D(nn.Module):
    def __init__(self, cin, cout, temb, groups, eps, scale=1.0):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin, eps=eps)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.time_emb_proj = nn.Linear(temb, cout)
        self.norm2 = nn.GroupNorm(groups, cout, eps=eps)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None
        self.scale = scale

    def forward(self, x, temb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time_emb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        if self.conv_shortcut is not None:
            x = self.conv_shortcut(x)
        return (x + h) / self.scale


class Attention(nn.Module):
    """Spatial self-attention (diffusers Attention with _from_deprecated_attn_block)."""

    def __init__(self, channels, head_dim, groups, eps, scale=1.0):
        super().__init__()
        self.heads = channels // head_dim
        self.head_dim = head_dim
        self.group_norm = nn.GroupNorm(groups, channels, eps=eps)
        self.to_q = nn.Linear(channels, channels)
        self.to_k = nn.Linear(channels, channels)
        self.to_v = nn.Linear(channels, channels)
        self.to_out = nn.ModuleList([nn.Linear(channels, channels)])
        self.scale = scale

    def forward(self, x):
        b, c, hgt, wid = x.shape
        h = self.group_norm(x).view(b, c, hgt * wid).transpose(1, 2)  # (B, HW, C)

        def split(y):  # (B, HW, C) -> (B*heads, HW, head_dim)
            return (y.reshape(b, -1, self.heads, self.head_dim).permute(0, 2, 1, 3)
                    .reshape(b * self.heads, -1, self.head_dim))

        q, k, v = split(self.to_q(h)), split(self.to_k(h)), split(self.to_v(h))
        scores = torch.baddbmm(torch.empty(q.shape[0], q.shape[1], k.shape[1], dtype=q.dtype),
                               q, k.transpose(-1, -2), beta=0, alpha=self.head_dim ** -0.5)
        probs = scores.float().softmax(dim=-1).to(q.dtype)
        o = torch.bmm(probs, v)
        o = o.reshape(b, self.heads, -1, self.head_dim).permute(0, 2, 1, 3).reshape(b, -1, c)
        o = self.to_out[0](o).transpose(-1, -2).reshape(b, c, hgt, wid)
        return (o + x) / self.scale


class Downsample2D(nn.Module):
    def __init__(self, channels, padding):
        super().__init__()
        self.padding = padding
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=padding)

    def forward(self, x):
        if self.padding == 0:
            x = F.pad(x, (0, 1, 0, 1))
        return self.conv(x)


class Upsample2D(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


def _record(dbg, name, x):
    if dbg is not None:
        dbg[name] = x
    return x


class DownBlock(nn.Module):
    def __init__(self, cin, cout, temb, layers, attn, head_dim, groups, eps, downsample, pad):
        super().__init__()
        self.resnets = nn.ModuleList(
            ResnetBlock2D(cin if i == 0 else cout, cout, temb, groups, eps) for i in range(layers))
        if attn:
            self.attentions = nn.ModuleList(
                Attention(cout, head_dim, groups, eps) for _ in range(layers))
        else:
            self.attentions = None
        self.downsamplers = nn.ModuleList([Downsample2D(cout, pad)]) if downsample else None

    def forward(self, x, temb, dbg=None, name=""):
        skips = []
        for j, resnet in enumerate(self.resnets):
            x = _record(dbg, f"{name}.resnets.{j}", resnet(x, temb))
            if self.attentions is not None:
                x = _record(dbg, f"{name}.attentions.{j}", self.attentions[j](x))
            skips.append(x)
        if self.downsamplers is not None:
            x = _record(dbg, f"{name}.downsamplers.0", self.downsamplers[0](x))
            skips.append(x)
        return x, skips


class UpBlock(nn.Module):
    def __init__(self, cin, prev, cout, temb, layers, attn, head_dim, groups, eps, upsample):
        super().__init__()
        self.resnets = nn.ModuleList(
            ResnetBlock2D((prev if j == 0 else cout) + (cin if j == layers - 1 else cout),
                          cout, temb, groups, eps) for j in range(layers))
        if attn:
            self.attentions = nn.ModuleList(
                Attention(cout, head_dim, groups, eps) for _ in range(layers))
        else:
            self.attentions = None
        self.upsamplers = nn.ModuleList([Upsample2D(cout)]) if upsample else None

    def forward(self, x, skips, temb, dbg=None, name=""):
        for j, resnet in enumerate(self.resnets):
            x = torch.cat([x, skips.pop()], dim=1)
            x = _record(dbg, f"{name}.resnets.{j}", resnet(x, temb))
            if self.attentions is not None:
                x = _record(dbg, f"{name}.attentions.{j}", self.attentions[j](x))
        if self.upsamplers is not None:
            x = _record(dbg, f"{name}.upsamplers.0", self.upsamplers[0](x))
        return x


class MidBlock(nn.Module):
    def __init__(self, ch, temb, head_dim, groups, attn_groups, eps, scale, add_attention):
        super().__init__()
        self.resnets = nn.ModuleList(
            ResnetBlock2D(ch, ch, temb, groups, eps, scale) for _ in range(2))
        self.attentions = nn.ModuleList(
            [Attention(ch, head_dim, attn_groups, eps, scale)]) if add_attention else None

    def forward(self, x, temb, dbg=None, name="mid_block"):
        x = _record(dbg, f"{name}.resnets.0", self.resnets[0](x, temb))
        if self.attentions is not None:
            x = _record(dbg, f"{name}.attentions.0", self.attentions[0](x))
        return _record(dbg, f"{name}.resnets.1", self.resnets[1](x, temb))


class UNet2DModel(nn.Module):
    def __init__(self, **config):
        super().__init__()
        unknown = set(config) - set(DEFAULT_CONFIG) - {"_class_name", "_diffusers_version",
                                                       "_name_or_path"}
        if unknown:
            raise ValueError(f"unknown config keys {sorted(unknown)}")
        cfg = {k: config.get(k, v) for k, v in DEFAULT_CONFIG.items()}
        self.config = cfg
        unsupported = {"time_embedding_type": "positional", "downsample_type": "conv",
                       "upsample_type": "conv", "act_fn": "silu",
                       "resnet_time_scale_shift": "default", "class_embed_type": None,
                       "num_class_embeds": None}
        for k, v in unsupported.items():
            if cfg[k] != v:
                raise ValueError(f"{k}={cfg[k]!r} not supported (only {v!r})")
        boc = cfg["block_out_channels"]
        n = len(boc)
        groups, eps = cfg["norm_num_groups"], cfg["norm_eps"]
        if groups is None:
            groups = min(boc[0] // 4, 32)
        hd = cfg["attention_head_dim"]
        temb = boc[0] * 4
        lpb = cfg["layers_per_block"]

        self.conv_in = nn.Conv2d(cfg["in_channels"], boc[0], 3, padding=1)
        self.time_embedding = TimestepEmbedding(boc[0], temb)

        self.down_blocks = nn.ModuleList()
        out = boc[0]
        for i, kind in enumerate(cfg["down_block_types"]):
            cin, out = out, boc[i]
            if kind not in ("DownBlock2D", "AttnDownBlock2D"):
                raise ValueError(f"down block {kind} not supported")
            self.down_blocks.append(DownBlock(
                cin, out, temb, lpb, kind == "AttnDownBlock2D", hd or out, groups, eps,
                i < n - 1, cfg["downsample_padding"]))

        attn_groups = cfg["attn_norm_num_groups"] or groups
        self.mid_block = MidBlock(boc[-1], temb, hd or boc[-1], groups, attn_groups, eps,
                                  cfg["mid_block_scale_factor"], cfg["add_attention"])

        self.up_blocks = nn.ModuleList()
        rev = list(reversed(boc))
        out = rev[0]
        for i, kind in enumerate(cfg["up_block_types"]):
            prev, out = out, rev[i]
            cin = rev[min(i + 1, n - 1)]
            if kind not in ("UpBlock2D", "AttnUpBlock2D"):
                raise ValueError(f"up block {kind} not supported")
            self.up_blocks.append(UpBlock(
                cin, prev, out, temb, lpb + 1, kind == "AttnUpBlock2D", hd or out, groups,
                eps, i < n - 1))

        self.conv_norm_out = nn.GroupNorm(groups, boc[0], eps=eps)
        self.conv_out = nn.Conv2d(boc[0], cfg["out_channels"], 3, padding=1)

    def forward(self, x, t, dbg=None):
        """x: (B,C,H,W) float, t: int/float scalar or (B,) tensor. Returns eps (B,C,H,W)."""
        cfg = self.config
        if not torch.is_tensor(t):
            t = torch.tensor([t], dtype=torch.long)
        t = t.reshape(-1).to(x.device) * torch.ones(x.shape[0], dtype=t.dtype, device=x.device)
        if cfg["center_input_sample"]:
            x = 2 * x - 1.0
        tp = timestep_embedding(t, cfg["block_out_channels"][0], cfg["flip_sin_to_cos"],
                                cfg["freq_shift"]).to(x.dtype)
        _record(dbg, "time_proj", tp)
        emb = _record(dbg, "time_embedding", self.time_embedding(tp))

        h = _record(dbg, "conv_in", self.conv_in(x))
        skips = [h]
        for i, blk in enumerate(self.down_blocks):
            h, s = blk(h, emb, dbg, f"down_blocks.{i}")
            _record(dbg, f"down_blocks.{i}", h)
            skips += s
        h = _record(dbg, "mid_block", self.mid_block(h, emb, dbg))
        for i, blk in enumerate(self.up_blocks):
            h = _record(dbg, f"up_blocks.{i}", blk(h, skips, emb, dbg, f"up_blocks.{i}"))
        h = _record(dbg, "conv_norm_out", self.conv_norm_out(h))
        return _record(dbg, "conv_out", self.conv_out(F.silu(h)))

    # ---- diffusers folder I/O ----
    @staticmethod
    def convert_state_dict(sd):
        """Map pre-2023 attention names (query/key/value/proj_attn) to the current ones."""
        out = {}
        for k, v in sd.items():
            parts = k.split(".")
            if len(parts) >= 2 and "attentions" in parts and parts[-2] in OLD_ATTN_KEYS:
                parts[-2:-1] = OLD_ATTN_KEYS[parts[-2]].split(".")
            out[".".join(parts)] = v
        return out

    @classmethod
    def from_pretrained(cls, folder, weights="diffusion_pytorch_model.safetensors"):
        with open(os.path.join(folder, "config.json")) as f:
            model = cls(**json.load(f))
        sd, _ = safetensors_io.load(os.path.join(folder, weights))
        model.load_state_dict({k: v.float() for k, v in cls.convert_state_dict(sd).items()})
        return model.eval()

    def diffusers_config(self, version="0.31.0"):
        """config.json content as diffusers writes it (sorted keys)."""
        c = dict(self.config, _class_name="UNet2DModel", _diffusers_version=version)
        return {k: c[k] for k in sorted(c)}

    def save_pretrained(self, folder, dtype=torch.float16):
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(self.diffusers_config(), f, indent=2, sort_keys=True)
            f.write("\n")
        sd = {k: v.detach().to(dtype) for k, v in self.state_dict().items()}
        safetensors_io.save(sd, os.path.join(folder, "diffusion_pytorch_model.safetensors"))
