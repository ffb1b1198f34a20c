"""Writes the fuzzer's seed inputs for the history-based exports (Mult-DAE, Mult-VAE, CDAE) and
AutoRec (with its training ratings):
a 4-byte little-endian manifest length, the manifest, then the safetensors bytes, as the `load`
target reads them. Needs numpy and safetensors.

    python3 scripts/fuzz_seed_autoencoders.py crates/ember-infer/fuzz/corpus/load
"""
import json
import struct
import sys

import numpy as np
from safetensors.numpy import save

USERS, ITEMS = 3, 4


def seed(kind, hidden):
    rng = np.random.default_rng(0)
    tensors = {}

    def linear(name, a, b):
        tensors[f"{name}.weight"] = rng.normal(size=(a, b)).astype(np.float32)
        tensors[f"{name}.bias"] = rng.normal(size=(b,)).astype(np.float32)

    if kind == "autorec":
        # Item-based: rows are the 4 items, columns the 3 users.
        linear("encoder", USERS, hidden)
        linear("decoder", hidden, USERS)
        tensors["ratings.offsets"] = np.array([0, 2, 3, 3, 4], dtype=np.int64)
        tensors["ratings.columns"] = np.array([0, 2, 1, 0], dtype=np.int32)
        tensors["ratings.values"] = np.array([4.0, 1.0, 5.0, 3.0], dtype=np.float32)
    elif kind == "cdae":
        linear("encoder", ITEMS, hidden)
        linear("decoder", hidden, ITEMS)
        tensors["users.weight"] = rng.normal(size=(USERS, hidden)).astype(np.float32)
    else:
        sizes = [ITEMS] + hidden
        encoder = list(sizes)
        if kind == "mult_vae":
            encoder[-1] *= 2
        for k, (a, b) in enumerate(zip(encoder, encoder[1:])):
            linear(f"encoder.{k}", a, b)
        decoder = sizes[::-1]
        for k, (a, b) in enumerate(zip(decoder, decoder[1:])):
            linear(f"decoder.{k}", a, b)
    if kind != "autorec":
        # User 10 has items 100 and 103, user 11 none, user 12 item 101.
        tensors["history.offsets"] = np.array([0, 2, 2, 3], dtype=np.int64)
        tensors["history.items"] = np.array([0, 3, 1], dtype=np.int32)
    model = {"kind": kind, "hidden": hidden}
    if kind == "autorec":
        model["item_based"] = True
    manifest = {
        "format_version": 1,
        "model": model,
        "precision": "f32",
        "user_ids": list(range(10, 10 + USERS)),
        "item_ids": list(range(100, 100 + ITEMS)),
        "dataset_fingerprint": "seed",
        "metrics": None,
    }
    raw = json.dumps(manifest).encode()
    return struct.pack("<I", len(raw)) + raw + save(tensors)


if __name__ == "__main__":
    out = sys.argv[1]
    for kind, hidden in [("mult_dae", [3, 2]), ("mult_vae", [3, 2]), ("cdae", 3), ("autorec", 3)]:
        with open(f"{out}/seed-{kind}", "wb") as f:
            f.write(seed(kind, hidden))
