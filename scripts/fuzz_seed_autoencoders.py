"""Writes the fuzzer's seed inputs for the history-based exports (Mult-DAE, Mult-VAE, CDAE,
SASRec, BERT4Rec) and AutoRec (with its training ratings):
a 4-byte little-endian manifest length, the manifest, then the safetensors bytes, as the `load`
target reads them. Needs numpy and safetensors.

    python3 scripts/fuzz_seed_autoencoders.py crates/ember-infer/fuzz/corpus/load
"""
import hashlib
import json
import struct
import sys

import numpy as np
from safetensors.numpy import save

USERS, ITEMS = 3, 4
MAX_LEN = 3


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
    elif kind in ("sasrec", "bert4rec"):
        bert = kind == "bert4rec"
        ff = 4 * hidden if bert else hidden
        tensors["items.weight"] = rng.normal(size=(ITEMS + 1 + bert, hidden)).astype(np.float32)
        tensors["positions.weight"] = rng.normal(size=(MAX_LEN, hidden)).astype(np.float32)

        def norm(name):
            tensors[f"{name}.gamma"] = rng.normal(size=(hidden,)).astype(np.float32)
            tensors[f"{name}.beta"] = rng.normal(size=(hidden,)).astype(np.float32)

        if bert:
            norm("embedding_norm")
        for k in range(2):
            norm(f"blocks.{k}.attention_norm")
            for part in ("query", "key", "value", "output"):
                linear(f"blocks.{k}.attention.{part}", hidden, hidden)
            norm(f"blocks.{k}.feed_forward_norm")
            linear(f"blocks.{k}.feed_forward_in", hidden, ff)
            linear(f"blocks.{k}.feed_forward_out", ff, hidden)
        if bert:
            linear("head", hidden, hidden)
            norm("head_norm")
            tensors["output_bias"] = rng.normal(size=(ITEMS,)).astype(np.float32)
        else:
            norm("final_norm")
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
    if kind in ("sasrec", "bert4rec"):
        # Sequences, in time order with a repeat: user 10 saw 103, 100, 103; 11 none; 12 101.
        tensors["history.offsets"] = np.array([0, 3, 3, 4], dtype=np.int64)
        tensors["history.items"] = np.array([3, 0, 3, 1], dtype=np.int32)
    elif kind != "autorec":
        # User 10 has items 100 and 103, user 11 none, user 12 item 101.
        tensors["history.offsets"] = np.array([0, 2, 2, 3], dtype=np.int64)
        tensors["history.items"] = np.array([0, 3, 1], dtype=np.int32)
    # Known items (format version 2 on): every user's items, sorted and distinct, as LEB128
    # varints of the first item and each following gap minus one (user 10: 100 and 103;
    # 11: none; 12: 101 for the history models; for AutoRec, the items each user rated).
    known = [[0, 3], [], [1]] if kind != "autorec" else [[0, 3], [1], [0]]
    offsets, encoded = [0], bytearray()
    for row in known:
        previous = None
        for item in row:
            value = item if previous is None else item - previous - 1
            while True:
                low, value = value & 0x7F, value >> 7
                encoded.append(low | (0x80 if value else 0))
                if not value:
                    break
            previous = item
        offsets.append(len(encoded))
    tensors["known.offsets"] = np.array(offsets, dtype=np.int64)
    tensors["known.items"] = np.frombuffer(bytes(encoded), dtype=np.uint8)
    model = {"kind": kind, "hidden": hidden}
    if kind in ("sasrec", "bert4rec"):
        model.update(blocks=2, heads=2, max_len=MAX_LEN, layer_norm_epsilon=1e-8)
    if kind == "autorec":
        model["item_based"] = True
    weights = save(tensors)
    users, items = list(range(10, 10 + USERS)), list(range(100, 100 + ITEMS))
    manifest = {
        "format_version": 3,
        "model": model,
        "precision": "f32",
        "user_ids": users,
        "item_ids": items,
        "dataset_fingerprint": "seed",
        "run_fingerprint": "",
        "checksums": {
            "weights": sha256(weights),
            "user_ids": keys_checksum(users),
            "item_ids": keys_checksum(items),
            "extensions": sha256(b"{}"),
        },
        "metrics": None,
    }
    raw = json.dumps(manifest).encode()
    return struct.pack("<I", len(raw)) + raw + weights


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def keys_checksum(keys):
    """ember-infer's `Keys::checksum` of integer keys: `i`, then each as 8 little-endian bytes."""
    return sha256(b"i" + b"".join(struct.pack("<q", k) for k in keys))


if __name__ == "__main__":
    out = sys.argv[1]
    kinds = [("mult_dae", [3, 2]), ("mult_vae", [3, 2]), ("cdae", 3), ("autorec", 3)]
    kinds += [("sasrec", 4), ("bert4rec", 4)]
    for kind, hidden in kinds:
        with open(f"{out}/seed-{kind}", "wb") as f:
            f.write(seed(kind, hidden))
