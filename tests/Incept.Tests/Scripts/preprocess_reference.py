#!/usr/bin/python3
"""torchvision reference for Incept's evaluation preprocessing of image files (version 1).

Usage: preprocess_reference.py OUT_DIR IMAGE...
For each image and each spec below writes OUT_DIR/<image stem>_<spec>_<path>.npy, float32 [3, size, size]:
  path "pil":    PIL decodes (convert("RGB")), transforms.Resize(floor(size / crop)) on the PIL image (8-bit, as
                 torchvision's and timm's evaluation loaders do), CenterCrop(size), ToTensor, Normalize(mean, std);
  path "tensor": the same on the float tensor of the decoded image, Resize with antialias=True.
Specs: tv_* = 224 px, crop 0.875, ImageNet mean/std; inception_* = 299 px, crop 0.875, mean = std = 0.5; each with
bilinear and bicubic filters. Needs Debian's python3-torch, python3-torchvision and python3-pil.
"""
import math
import os
import sys

import numpy as np
from PIL import Image
from torchvision import transforms
from torchvision.transforms import InterpolationMode

IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
HALF = ([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])
SPECS = {
    "tv_bilinear": (224, 0.875, InterpolationMode.BILINEAR, IMAGENET),
    "tv_bicubic": (224, 0.875, InterpolationMode.BICUBIC, IMAGENET),
    "inception_bilinear": (299, 0.875, InterpolationMode.BILINEAR, HALF),
    "inception_bicubic": (299, 0.875, InterpolationMode.BICUBIC, HALF),
}


def main():
    out = sys.argv[1]
    for path in sys.argv[2:]:
        stem = os.path.splitext(os.path.basename(path))[0]
        image = Image.open(path).convert("RGB")
        as_tensor = transforms.functional.to_tensor(image)
        for name, (size, crop, mode, (mean, std)) in SPECS.items():
            resized = int(math.floor(size / crop))
            pil = transforms.Compose([
                transforms.Resize(resized, interpolation=mode),
                transforms.CenterCrop(size),
                transforms.ToTensor(),
                transforms.Normalize(mean, std),
            ])
            tensor = transforms.Compose([
                transforms.Resize(resized, interpolation=mode, antialias=True),
                transforms.CenterCrop(size),
                transforms.Normalize(mean, std),
            ])
            np.save(f"{out}/{stem}_{name}_pil.npy", pil(image).numpy().astype(np.float32))
            np.save(f"{out}/{stem}_{name}_tensor.npy", tensor(as_tensor).numpy().astype(np.float32))


if __name__ == "__main__":
    main()
