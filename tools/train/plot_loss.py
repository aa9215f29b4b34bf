#!/usr/bin/python3
"""Draw the training loss curve of loss.csv (train.py's log) as a PNG.

  plot_loss.py CKPT/loss.csv OUT.png

Plain PIL (no plotting library needed): the loss on a log scale against
the step.
"""
import argparse
import csv
import math

from PIL import Image, ImageDraw


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("csv")
    ap.add_argument("out")
    a = ap.parse_args()
    steps, loss = [], []
    with open(a.csv) as f:
        for row in csv.DictReader(f):
            steps.append(int(row["step"]))
            loss.append(float(row["loss"]))
    w, h, m = 640, 360, 50
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    lo, hi = math.log10(min(loss)), math.log10(max(loss))
    lo, hi = math.floor(lo * 2) / 2, math.ceil(hi * 2) / 2
    smax = max(steps)

    def xy(s, v):
        return (m + (w - 2 * m) * s / smax,
                h - m - (h - 2 * m) * (math.log10(v) - lo) / (hi - lo))

    d.rectangle([m, m, w - m, h - m], outline="black")
    e = lo
    while e <= hi + 1e-9:
        y = xy(0, 10 ** e)[1]
        d.line([m, y, w - m, y], fill=(220, 220, 220))
        d.text((5, y - 6), f"{10 ** e:.3g}", fill="black")
        e += 0.5
    for s in range(0, smax + 1, max(500, smax // 8 // 500 * 500)):
        x = xy(s, 10 ** lo)[0]
        d.text((x - 10, h - m + 5), str(s), fill="black")
    d.line([xy(s, v) for s, v in zip(steps, loss)], fill=(30, 90, 200), width=2)
    d.text((m, 15), "training loss (eps MSE, mean per 50 steps) vs step", fill="black")
    img.save(a.out)


if __name__ == "__main__":
    main()
