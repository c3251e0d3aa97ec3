#!/usr/bin/python3
"""torchvision reference for Incept's image transforms (version 1).

Usage: transforms_reference.py OUT_DIR
Writes OUT_DIR/input.npy (float32 [3, 13, 17], uniform in [0, 1), torch seed 0) and one float32 .npy per
operation of torchvision.transforms.functional on float tensors: antialiased bilinear and bicubic resizes
down, up and mixed, a bilinear resize without antialiasing, centre crops, a flip and the four colour
adjustments with fixed factors. Needs Debian's python3-torch and python3-torchvision.
"""
import sys

import numpy as np
import torch
import torchvision.transforms.functional as F
from torchvision.transforms import InterpolationMode


def main():
    out = sys.argv[1]
    g = torch.Generator().manual_seed(0)
    img = torch.rand(3, 13, 17, generator=g, dtype=torch.float32)
    results = {"input": img}
    modes = {"bilinear": InterpolationMode.BILINEAR, "bicubic": InterpolationMode.BICUBIC}
    for name, mode in modes.items():
        for h, w in [(7, 9), (20, 31), (10, 25), (4, 3)]:
            results[f"resize_{name}_{h}x{w}"] = F.resize(img, [h, w], interpolation=mode, antialias=True)
    results["resize_bilinear_noaa_7x9"] = F.resize(img, [7, 9], interpolation=InterpolationMode.BILINEAR, antialias=False)
    results["center_crop_8x8"] = F.center_crop(img, [8, 8])
    results["center_crop_20x20"] = F.center_crop(img, [20, 20])
    results["hflip"] = F.hflip(img)
    results["brightness_1.3"] = F.adjust_brightness(img, 1.3)
    results["contrast_0.6"] = F.adjust_contrast(img, 0.6)
    results["saturation_1.7"] = F.adjust_saturation(img, 1.7)
    results["hue_0.23"] = F.adjust_hue(img, 0.23)
    results["hue_-0.4"] = F.adjust_hue(img, -0.4)
    for key, t in results.items():
        np.save(f"{out}/{key}.npy", t.contiguous().numpy().astype(np.float32))


if __name__ == "__main__":
    main()
