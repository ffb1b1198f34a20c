"""Reads an exported MF or GMF model with numpy and the safetensors package alone, and prints
the score of every (user, item) pair, one per line, row-major over internal ids: the format is
usable outside Rust. Usage: python3 scripts/check_export.py models/NAME"""
import json, sys
import numpy as np
from safetensors.numpy import load_file

directory = sys.argv[1]
manifest = json.load(open(f"{directory}/manifest.json"))
tensors = load_file(f"{directory}/model.safetensors")

def matrix(name):
    """A stored matrix as float32, undoing f16 or int8 (per-row scale) storage."""
    values = tensors[name].astype(np.float32)
    if manifest["precision"] == "int8":
        values = values * tensors[name + ".scale"][:, None]
    return values

kind = manifest["model"]["kind"]
users, items = matrix("users.weight"), matrix("items.weight")
if kind == "mf":
    scores = users @ items.T
elif kind == "gmf":
    h = matrix("output.weight")[:, 0]
    scores = (users * h) @ items.T + tensors["output.bias"].astype(np.float32)[0]
else:
    sys.exit(f"check_export.py reads mf and gmf models, not {kind}")
for value in scores.reshape(-1):
    print(f"{value:.9g}")
