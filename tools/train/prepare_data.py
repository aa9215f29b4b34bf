#!/usr/bin/python3
"""Build the 32x32 training set of the default model from freely licensed emoji art.

Sources (npm packages, fetched with `npm pack` into a scratch dir, never committed):
  emoji-datasource-google 16.0.0  Noto Emoji 64x64 PNGs; art under Apache-2.0
                                  (the package README says so; package code is MIT)
  @lobehub/fluent-emoji-3d 1.1.0  Microsoft Fluent Emoji "3D" style, 256x256 WebP; MIT

Selection:
  * skin-tone variants (any U+1F3FB..U+1F3FF in the sequence) are dropped: about half of
    the files are recolourings of the same shape, so keeping them would weight people and
    hands five-fold and spend the small model's capacity on near-duplicates;
  * country and subdivision flags (regional-indicator pairs, tag sequences) are dropped:
    the Fluent package's flags are not Microsoft artwork (Microsoft's Fluent set has no
    country flags; their provenance is undocumented), Noto's come from a separate
    upstream (region-flags), and ~250 striped rectangles would dominate the set;
  * Noto images are only used when emoji.json says has_img_google (no fallbacks).
Each image is composited on white and downsampled with Lanczos. ~2% of the emoji
(split by code-point sequence, so both artworks of one emoji land on the same side)
are held out for validation.

Writes to --out: train.npy and val.npy (uint8 [N,32,32,3]), index.json (file names and
split), sources.json (package, version, tarball sha512, licence evidence) and preview.png.
"""
import argparse
import base64
import hashlib
import io
import json
import os
import random
import re
import subprocess
import tarfile

import numpy as np
from PIL import Image

PACKAGES = [
    {"key": "noto", "name": "emoji-datasource-google", "version": "16.0.0",
     "images": "package/img/google/64/", "ext": ".png",
     "artwork": "Noto Emoji (Google), via emoji-datasource-google (iamcal/emoji-data)",
     "licence": "Apache-2.0",
     "copyright": "Copyright Google Inc. (Noto Emoji, https://github.com/googlefonts/noto-emoji)",
     "evidence_file": "package/README.md",
     "evidence": "Android/Google/Noto images, are available under the [Apache License 2.0]"},
    {"key": "fluent", "name": "@lobehub/fluent-emoji-3d", "version": "1.1.0",
     "images": "package/assets/", "ext": ".webp",
     "artwork": "Fluent Emoji 3D (Microsoft), via @lobehub/fluent-emoji-3d",
     "licence": "MIT",
     "copyright": "Copyright (c) Microsoft Corporation (Fluent Emoji, https://github.com/microsoft/fluentui-emoji)",
     "evidence_file": "package/package.json",
     "evidence": '"license": "MIT"'},
]


def npm_tarball(pkg, workdir):
    """Return the path of the package tarball, running `npm pack` if it is not there."""
    fname = pkg["name"].lstrip("@").replace("/", "-") + "-" + pkg["version"] + ".tgz"
    path = os.path.join(workdir, fname)
    if not os.path.exists(path):
        subprocess.run(["npm", "pack", "--silent", f"{pkg['name']}@{pkg['version']}"],
                       cwd=workdir, check=True, stdout=subprocess.DEVNULL)
    return path


def codepoints(stem):
    return [int(c, 16) for c in re.split(r"[-_]", stem)]


def excluded(cps):
    if any(0x1F3FB <= c <= 0x1F3FF for c in cps):
        return "skin tone"
    if len(cps) >= 2 and all(0x1F1E6 <= c <= 0x1F1FF for c in cps[:2]):
        return "flag"
    if any(0xE0020 <= c <= 0xE007F for c in cps):
        return "flag"
    return None


def to_rgb(data, size):
    im = Image.open(io.BytesIO(data))
    im.load()
    im = im.convert("RGBA")
    bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
    im = Image.alpha_composite(bg, im).convert("RGB")
    return np.asarray(im.resize((size, size), Image.LANCZOS, reducing_gap=None))


def load_package(pkg, tgz, size, stats):
    with tarfile.open(tgz) as tar:
        files = {m.name: m for m in tar.getmembers() if m.isfile()}
        ev = tar.extractfile(files[pkg["evidence_file"]]).read().decode()
        if pkg["evidence"] not in ev:
            raise SystemExit(f"{pkg['name']}: licence statement not found in {pkg['evidence_file']}")
        meta = json.loads(tar.extractfile(files["package/package.json"]).read())
        if meta["version"] != pkg["version"]:
            raise SystemExit(f"{pkg['name']}: version {meta['version']} != {pkg['version']}")
        has_img = None
        if pkg["key"] == "noto":
            emoji = json.loads(tar.extractfile(files["package/emoji.json"]).read())
            has_img = {e["image"]: e["has_img_google"] for e in emoji}
        out = []
        for name in sorted(files):
            if not (name.startswith(pkg["images"]) and name.endswith(pkg["ext"])):
                continue
            base = os.path.basename(name)
            stem = base[:-len(pkg["ext"])]
            why = excluded(codepoints(stem))
            if why is None and has_img is not None and not has_img.get(base, False):
                why = "no google image"
            stats[pkg["key"]][why or "kept"] = stats[pkg["key"]].get(why or "kept", 0) + 1
            if why:
                continue
            img = to_rgb(tar.extractfile(files[name]).read(), size)
            ident = "-".join(f"{c:x}" for c in codepoints(stem) if c != 0xFE0F)
            out.append((ident, f"{pkg['key']}:{base}", img))
    return out, meta.get("license")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workdir", default="/work/data/npm", help="where npm tarballs go")
    ap.add_argument("--out", default="/work/data/emoji32", help="output folder")
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--val-frac", type=float, default=0.02)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    os.makedirs(args.out, exist_ok=True)

    items, stats, sources = [], {}, []
    for pkg in PACKAGES:
        tgz = npm_tarball(pkg, args.workdir)
        stats[pkg["key"]] = {}
        got, declared = load_package(pkg, tgz, args.size, stats)
        items += got
        digest = base64.b64encode(hashlib.sha512(open(tgz, "rb").read()).digest()).decode()
        sources.append({k: pkg[k] for k in ("name", "version", "artwork", "licence",
                                            "copyright", "evidence_file", "evidence")}
                       | {"package_json_license": declared, "tarball": os.path.basename(tgz),
                          "integrity": "sha512-" + digest, "images_used": len(got)})
        print(pkg["name"], pkg["version"], stats[pkg["key"]])

    idents = sorted({i for i, _, _ in items})
    rng = random.Random(args.seed)
    val_ids = set(rng.sample(idents, max(1, round(args.val_frac * len(idents)))))
    split = {"train": [], "val": []}
    arrays = {"train": [], "val": []}
    for ident, name, img in items:
        s = "val" if ident in val_ids else "train"
        split[s].append(name)
        arrays[s].append(img)
    for s in ("train", "val"):
        np.save(os.path.join(args.out, f"{s}.npy"), np.stack(arrays[s]).astype(np.uint8))
        print(f"{s}: {len(arrays[s])} images")
    with open(os.path.join(args.out, "index.json"), "w") as f:
        json.dump(split, f, indent=1)
    with open(os.path.join(args.out, "sources.json"), "w") as f:
        json.dump({"packages": sources, "selection": stats, "size": args.size,
                   "val_frac": args.val_frac, "seed": args.seed}, f, indent=2)

    tr = np.stack(arrays["train"])
    pick = tr[np.random.default_rng(args.seed).choice(len(tr), 256, replace=False)]
    grid = pick.reshape(16, 16, args.size, args.size, 3).transpose(0, 2, 1, 3, 4)
    Image.fromarray(grid.reshape(16 * args.size, 16 * args.size, 3)).save(
        os.path.join(args.out, "preview.png"))


if __name__ == "__main__":
    main()
