#!/usr/bin/env python3
"""GRU4Rec training throughput, PyTorch beside ember, on this machine, with identical settings.

The model is ember's `bench train` GRU4Rec preset (RecBole's defaults): item embeddings of 64
(Xavier-normal, shared by input and output), dropout 0.3 on them, one GRU layer of 128 (with
biases; Xavier-uniform weights), a dense 128 -> 64 projection of each state; the projected state
after each item scores every item as the next by a dot product with the item embeddings, trained
with a softmax cross-entropy over all items. Adam lr 1e-3 (betas 0.9, 0.999). The PyTorch model
follows RecBole's GRU4Rec (item_embedding, emb_dropout, nn.GRU, dense, CE over the item
embeddings), except that it keeps the GRU's biases and leaves the padding row out of the softmax,
as ember does.

Data, as ember draws it (crates/ember-train/src/bench.rs, ember-data's sequences.rs): `samples`
users (default every user of --size), each with `per_user` distinct uniform items in a random
order (fixed seed). An epoch: the users shuffled; each user's window is the last 50 of their
items but the last, with a target at every position that has a next item (the item that
follows); batches of `batch` windows. Examples are targets (per_user - 1 per user, at most 50).
ember left-pads its windows and carries the zero state over the padding; PyTorch's nn.GRU would
change its state on padding, so here the windows are right-padded, as RecBole's are, which gives
the same states at the same cost (50 steps). Each epoch's windows are drawn afresh inside the
timed region (ember's figure includes building its batches); the device is synchronised at both
ends. The figure is the last epoch's, the others being warm-up.

    python3 scripts/bench_torch_gru4rec.py --torch-device cpu --ember-device flex --batch 256
    python3 scripts/bench_torch_gru4rec.py --torch-device cuda --ember-device wgpu --batch 256

It runs `ember bench train --model gru4rec ... --json` (the binary given by --ember)
first, then PyTorch (whose worker threads would otherwise still spin during ember's run),
and prints both figures and ratio=ember/pytorch (examples per second; > 1: ember is
faster). --skip-ember or --skip-torch runs one side only.
"""
import sys
import time

import numpy as np

from peer_bench import SIZES, run, synthetic_interactions

EMBEDDING, HIDDEN, MAX_LEN, DROPOUT = 64, 128, 50, 0.3


def next_item_epoch(rng, train):
    """Every user's window (shuffled), right-padded tokens, and its targets (internal ids)."""
    users, per_user = train.shape
    kept = min(per_user - 1, MAX_LEN)
    seqs = train[rng.permutation(users)]
    inputs = np.zeros((users, MAX_LEN), np.int64)
    inputs[:, :kept] = seqs[:, per_user - 1 - kept:per_user - 1] + 1
    return inputs, seqs[:, per_user - kept:]


def torch_bench(args):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class GRU4Rec(nn.Module):
        def __init__(s, num_items):
            super().__init__()
            s.item_embedding = nn.Embedding(num_items + 1, EMBEDDING)  # row 0 pads
            s.emb_dropout = nn.Dropout(DROPOUT)
            s.gru_layers = nn.GRU(EMBEDDING, HIDDEN, num_layers=1, batch_first=True)
            s.dense = nn.Linear(HIDDEN, EMBEDDING)
            nn.init.xavier_normal_(s.item_embedding.weight)
            nn.init.xavier_uniform_(s.gru_layers.weight_hh_l0)
            nn.init.xavier_uniform_(s.gru_layers.weight_ih_l0)

        def forward(s, seq):
            out, _ = s.gru_layers(s.emb_dropout(s.item_embedding(seq)))
            return s.dense(out)

    dev = args.torch_device
    torch.manual_seed(42)
    rng = np.random.default_rng(42)
    users, items, per_user = SIZES[args.size]
    users = min(args.samples or users, users)
    train = synthetic_interactions(users, items, per_user, 42)
    model = GRU4Rec(items).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sync = torch.cuda.synchronize if dev.startswith("cuda") else (lambda: None)
    results = []
    for epoch in range(args.epochs):
        sync()
        t = time.perf_counter()
        inputs, targets = next_item_epoch(rng, train)
        kept = targets.shape[1]
        loss_sum, examples = torch.zeros((), device=dev), 0
        for lo in range(0, users, args.batch):
            hi = min(lo + args.batch, users)
            seq = torch.from_numpy(inputs[lo:hi]).to(dev)
            # Flat positions of the targets (row * MAX_LEN + t), as ember's batches carry them.
            at = torch.from_numpy((np.arange(hi - lo)[:, None] * MAX_LEN + np.arange(kept)).ravel()).to(dev)
            target = torch.from_numpy(targets[lo:hi].ravel()).to(dev)
            h = model(seq).reshape(-1, EMBEDDING)[at]
            logits = h @ model.item_embedding.weight[1:].T
            loss = F.cross_entropy(logits, target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.detach() * len(target)
            examples += len(target)
        mean_loss = loss_sum.item() / examples
        sync()
        secs = time.perf_counter() - t
        results.append((examples / secs, secs, examples))
        print(f"torch epoch {epoch}: {secs:.3f} s, {examples / secs:.0f} targets/s, loss {mean_loss:.4f}",
              file=sys.stderr, flush=True)
    return results[-1]


def main():
    run(__doc__, "gru4rec", "GRU4Rec", "targets", 256, "windows (users) per step", "games", torch_bench)


if __name__ == "__main__":
    main()
