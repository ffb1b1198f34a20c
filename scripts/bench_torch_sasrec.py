#!/usr/bin/env python3
"""SASRec training throughput, PyTorch beside ember, on this machine, with identical settings.

The model is ember's `bench train` SASRec preset: hidden 50, 2 causal self-attention blocks, 1
head, window 50, dropout 0.5, item embeddings (shared by input and output, scaled by sqrt(50))
plus learned position embeddings, query-only layer norm before attention (eps 1e-8), point-wise
ReLU feed-forward of width 50, padded positions zeroed, final layer norm; Xavier-normal weights.
Attention is causal and never attends to padded keys. Loss: BCE on logits with one uniform
negative per target (positive term and negative term each averaged), Adam lr 1e-3, betas
0.9/0.98. The PyTorch model follows pmixer/SASRec.pytorch (its code is copied in
scripts/torch_sasrec.py), including its Conv1d(kernel 1) feed-forward.

Data, as ember draws it (crates/ember-train/src/bench.rs, ember-data's sequences.rs): `samples`
users (default every user of --size), each with `per_user` distinct uniform items in a random
order (fixed seed). An epoch: the users shuffled; each user's window is the last 50 of their
items but the last, left-padded, with a target at every position that has a next item (the item
that follows) and one uniform negative outside the user's items for each target; batches of
`batch` windows. Examples are targets (per_user - 1 per user, at most 50). The epochs' examples
are drawn afresh each epoch, inside the timed region (ember's figure includes building its
batches); the device is synchronised at both ends. The figure is the last epoch's, the others
being warm-up.

    python3 scripts/bench_torch_sasrec.py --torch-device cpu --ember-device flex --batch 128
    python3 scripts/bench_torch_sasrec.py --torch-device cuda --ember-device wgpu --batch 128 --size ml20m

It runs `ember bench train --model sasrec ... --json` (the binary given by --ember)
first, then PyTorch (whose worker threads would otherwise still spin during ember's run),
and prints both figures and ratio=ember/pytorch (examples per second; > 1: ember is
faster). --skip-ember or --skip-torch runs one side only.
"""
import sys
import time

import numpy as np

from peer_bench import SIZES, run, synthetic_interactions

HIDDEN, BLOCKS, HEADS, MAX_LEN, DROPOUT = 50, 2, 1, 50, 0.5


def uniform_negatives(rng, users, num_items, keys):
    """One uniform item per entry of `users` outside that user's items (keys: sorted u * I + i)."""
    neg = rng.integers(0, num_items, users.shape)
    bad = np.ones(users.shape, bool)
    while bad.any():
        neg[bad] = rng.integers(0, num_items, int(bad.sum()))
        k = users * num_items + neg
        at = np.minimum(np.searchsorted(keys, k), len(keys) - 1)
        bad = keys[at] == k
    return neg


def next_item_epoch(rng, train, num_items, keys):
    """Windows of every user (shuffled) with their targets and one negative each, as tokens."""
    users, per_user = train.shape
    kept = min(per_user - 1, MAX_LEN)
    order = rng.permutation(users)
    seqs = train[order]
    inputs = np.zeros((users, MAX_LEN), np.int64)
    inputs[:, MAX_LEN - kept:] = seqs[:, per_user - 1 - kept:per_user - 1] + 1
    targets = seqs[:, per_user - kept:] + 1
    negatives = uniform_negatives(rng, np.repeat(order[:, None], kept, 1), num_items, keys) + 1
    return inputs, targets, negatives


def torch_bench(args):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class FeedForward(nn.Module):  # pmixer's PointWiseFeedForward
        def __init__(s, hidden, dropout):
            super().__init__()
            s.conv1, s.conv2 = nn.Conv1d(hidden, hidden, 1), nn.Conv1d(hidden, hidden, 1)
            s.dropout1, s.dropout2 = nn.Dropout(dropout), nn.Dropout(dropout)

        def forward(s, x):
            y = s.dropout2(s.conv2(torch.relu(s.dropout1(s.conv1(x.transpose(-1, -2))))))
            return y.transpose(-1, -2) + x

    class SASRec(nn.Module):
        def __init__(s, num_items):
            super().__init__()
            s.item_emb = nn.Embedding(num_items + 1, HIDDEN)  # row 0 pads
            s.pos_emb = nn.Embedding(MAX_LEN, HIDDEN)  # ember's: one row per position
            s.emb_dropout = nn.Dropout(DROPOUT)
            s.attn_norms = nn.ModuleList(nn.LayerNorm(HIDDEN, eps=1e-8) for _ in range(BLOCKS))
            s.attns = nn.ModuleList(nn.MultiheadAttention(HIDDEN, HEADS, DROPOUT, batch_first=True)
                                    for _ in range(BLOCKS))
            s.ffn_norms = nn.ModuleList(nn.LayerNorm(HIDDEN, eps=1e-8) for _ in range(BLOCKS))
            s.ffns = nn.ModuleList(FeedForward(HIDDEN, DROPOUT) for _ in range(BLOCKS))
            s.last_norm = nn.LayerNorm(HIDDEN, eps=1e-8)
            for p in s.parameters():
                if p.dim() > 1:
                    nn.init.xavier_normal_(p)
            with torch.no_grad():
                s.item_emb.weight[0].zero_()

        def forward(s, seq):
            batch, length = seq.shape
            x = s.item_emb(seq) * HIDDEN ** 0.5 + s.pos_emb.weight[MAX_LEN - length:]
            keep = (seq != 0).unsqueeze(-1)
            x = s.emb_dropout(x) * keep
            # Causal, and no padded key (as ember); finite so that all-padded rows stay finite.
            blocked = ~torch.tril(torch.ones(length, length, dtype=torch.bool, device=seq.device))
            blocked = blocked.unsqueeze(0) | (seq == 0).unsqueeze(1)
            mask = torch.zeros(blocked.shape, device=seq.device).masked_fill(blocked, -1e9)
            mask = mask.repeat_interleave(HEADS, 0)
            for norm, attn, ffn_norm, ffn in zip(s.attn_norms, s.attns, s.ffn_norms, s.ffns):
                q = norm(x)
                out, _ = attn(q, x, x, attn_mask=mask, need_weights=False)
                x = ffn(ffn_norm(q + out)) * keep
            return s.last_norm(x)

    dev = args.torch_device
    torch.manual_seed(42)
    rng = np.random.default_rng(42)
    users, items, per_user = SIZES[args.size]
    users = min(args.samples or users, users)
    train = synthetic_interactions(users, items, per_user, 42)
    keys = np.sort((np.arange(users)[:, None] * items + train).ravel())
    model = SASRec(items).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.98))
    sync = torch.cuda.synchronize if dev.startswith("cuda") else (lambda: None)
    results = []
    for epoch in range(args.epochs):
        sync()
        t = time.perf_counter()
        inputs, targets, negatives = next_item_epoch(rng, train, items, keys)
        kept = targets.shape[1]
        loss_sum, examples = torch.zeros((), device=dev), 0
        for lo in range(0, users, args.batch):
            hi = min(lo + args.batch, users)
            seq = torch.from_numpy(inputs[lo:hi]).to(dev)
            # Flat positions of the targets (row * MAX_LEN + t), as ember's batches carry them.
            at = (np.arange(hi - lo)[:, None] * MAX_LEN + np.arange(MAX_LEN - kept, MAX_LEN)).ravel()
            at = torch.from_numpy(at).to(dev)
            pos = torch.from_numpy(targets[lo:hi].ravel()).to(dev)
            neg = torch.from_numpy(negatives[lo:hi].ravel()).to(dev)
            h = model(seq).reshape(-1, HIDDEN)[at]
            pos_logits = (h * model.item_emb(pos)).sum(-1)
            neg_logits = (h * model.item_emb(neg)).sum(-1)
            loss = F.softplus(-pos_logits).mean() + F.softplus(neg_logits).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.detach() * len(pos)
            examples += len(pos)
        mean_loss = loss_sum.item() / examples
        sync()
        secs = time.perf_counter() - t
        results.append((examples / secs, secs, examples))
        print(f"torch epoch {epoch}: {secs:.3f} s, {examples / secs:.0f} targets/s, loss {mean_loss:.4f}",
              file=sys.stderr, flush=True)
    return results[-1]


def main():
    run(__doc__, "sasrec", "SASRec", "targets", 128, "windows (users) per step", "games", torch_bench)


if __name__ == "__main__":
    main()
