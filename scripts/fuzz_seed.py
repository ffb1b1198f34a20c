"""Packs an exported model directory into one fuzz input for crates/ember-infer/fuzz (4-byte
little-endian manifest length, manifest, safetensors). Usage: fuzz_seed.py MODEL_DIR OUT_FILE"""
import struct, sys
manifest = open(sys.argv[1] + "/manifest.json", "rb").read()
weights = open(sys.argv[1] + "/model.safetensors", "rb").read()
open(sys.argv[2], "wb").write(struct.pack("<I", len(manifest)) + manifest + weights)
