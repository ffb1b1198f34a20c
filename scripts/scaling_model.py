#!/usr/bin/env python3
"""A scaling model, on paper, for ember's data-parallel training over MPI.

Each step, every rank computes its share of the batch (forward, backward), then the gradients
are exchanged (`ReplicaSync` in crates/ember-train/src/distributed.rs) and every rank applies
the same Adam step. ember does not overlap the exchange with the backward pass, and it moves
whole gradients through host memory (a GPU rank downloads them and uploads the sum), so

    step time = compute + host copies + exchange
    efficiency = compute / step time

with, over N ranks, a network of bandwidth B and per-message latency a:
- dense ring all-reduce of S bytes: 2 (N-1)/N * S/B + 2 (N-1) a
- an embedding table's touched rows (k rows of width d per rank, ids included) by ring
  all-gather: (N-1) * k (d+1) 4 / B + (N-1) a; `auto` exchange takes the rows when
  N k (d+1) < n d (fewer bytes than the table), as ember does, else the dense all-reduce
- host copies: 2 S_all / PCIe (down and up), none on CPU ranks.

Compute times per step are measured (see README, "Distributed training"), one GPU per rank
with the per-rank batch fixed (weak scaling). Everything else is arithmetic; run it to print
the table:

    python3 scripts/scaling_model.py
"""

import argparse
import math

# name: (bytes per second, seconds of latency per message)
NETWORKS = {
    "25 GbE": (25e9 / 8, 25e-6),
    "200 Gb/s InfiniBand": (200e9 / 8, 2e-6),
}
PCIE = 25e9  # bytes/s each way, a conservative effective PCIe 5.0 x16 rate


def unique_rows(table_rows, draws):
    """Expected distinct rows among `draws` uniform draws from `table_rows` rows."""
    return table_rows * (1.0 - math.exp(-draws / table_rows))


def neumf_ml20m(batch):
    """NeuMF at the bench preset (GMF 32, MLP embeddings 64, MLP 128-64-32-16) on ML-20M's
    138,493 users x 26,744 items, `batch` uniform (user, item) pairs a rank and step."""
    users, items = 138_493, 26_744
    k_users, k_items = unique_rows(users, batch), unique_rows(items, batch)
    tables = [
        ("gmf users", users, 32, k_users),
        ("mlp users", users, 64, k_users),
        ("gmf items", items, 32, k_items),
        ("mlp items", items, 64, k_items),
    ]
    dense_rest = (128 * 64 + 64 + 64 * 32 + 32 + 32 * 16 + 16 + 48 + 1) * 4
    return tables, dense_rest


def sasrec_games(batch, max_len=50, hidden=50):
    """SASRec (2 blocks, hidden 50, max_len 50, one negative a position) on Games' 23,715
    items: a rank's batch of `batch` windows touches about batch x max_len positives and as
    many negatives (fewer for short histories: Games users have 9.3 items on average)."""
    items = 23_715 + 2
    targets = batch * 9.3 * 2  # positives and negatives
    tables = [("items", items, hidden, unique_rows(items, targets))]
    block = 4 * hidden * hidden + 4 * hidden + 2 * hidden * hidden + 2 * hidden + 4 * hidden
    dense_rest = (2 * block + max_len * hidden + 2 * hidden) * 4
    return tables, dense_rest


def step_exchange(tables, dense_rest, ranks, bandwidth, latency):
    """Seconds of exchange per step and the bytes a rank sends, with `auto` exchange."""
    if ranks == 1:
        return 0.0, 0.0
    dense_bytes = dense_rest
    gather_secs = 0.0
    sent = 0.0
    for _, rows, width, touched in tables:
        if ranks * touched * (width + 1) < rows * width:
            row_bytes = touched * (width + 1) * 4
            gather_secs += (ranks - 1) * row_bytes / bandwidth + (ranks - 1) * latency
            sent += row_bytes
        else:
            dense_bytes += rows * width * 4
    reduce_secs = 2 * (ranks - 1) / ranks * dense_bytes / bandwidth + 2 * (ranks - 1) * latency
    return reduce_secs + gather_secs, sent + dense_bytes


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--neumf-step-ms",
        type=float,
        default=65_536 / 16.6e6 * 1e3,
        help="NeuMF ML-20M compute per step at batch 65,536 (ember on an H100: 16.6 M samples/s)",
    )
    parser.add_argument(
        "--neumf-large-step-ms",
        type=float,
        default=1_048_576 / 33.4e6 * 1e3,
        help="NeuMF ML-20M-size compute per step at batch 1,048,576 (ember on an H100: 33.4 M samples/s)",
    )
    parser.add_argument(
        "--sasrec-step-ms",
        type=float,
        default=4.5 / (31_013 / 128) * 1e3,
        help="SASRec Games compute per step at batch 128 (PyTorch on an H100: 4.5 s an epoch)",
    )
    args = parser.parse_args()
    cases = [
        ("NeuMF, ML-20M, 65,536 pairs a GPU", neumf_ml20m(65_536), args.neumf_step_ms / 1e3),
        (
            "NeuMF, ML-20M, 1,048,576 pairs a GPU",
            neumf_ml20m(1_048_576),
            args.neumf_large_step_ms / 1e3,
        ),
        ("SASRec, Games, 128 windows a GPU", sasrec_games(128), args.sasrec_step_ms / 1e3),
    ]
    print("| model | network | GPUs | compute ms | host copies ms | exchange ms | MB sent a rank | efficiency |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for label, (tables, dense_rest), compute in cases:
        all_bytes = dense_rest + sum(r * w * 4 for _, r, w, _ in tables)
        host = 2 * all_bytes / PCIE
        for network, (bandwidth, latency) in NETWORKS.items():
            for ranks in (8, 64):
                exchange, sent = step_exchange(tables, dense_rest, ranks, bandwidth, latency)
                total = compute + host + exchange
                print(
                    f"| {label} | {network} | {ranks} | {compute * 1e3:.1f} | {host * 1e3:.1f} "
                    f"| {exchange * 1e3:.1f} | {sent / 1e6:.1f} | {compute / total:.0%} |"
                )


if __name__ == "__main__":
    main()
