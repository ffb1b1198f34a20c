#!/usr/bin/env python3
"""BERT4Rec training throughput, PyTorch beside ember, on this machine, with identical settings.

The model is ember's `bench train` BERT4Rec preset: hidden 64, 2 bidirectional post-norm
transformer blocks (2 heads, GELU feed-forward of width 256, dropout 0.1 on the residual branches,
the attention weights and inside the feed-forward layer, layer norm eps 1e-12), padded keys never
attended to; item (padding + items + mask token) and learned position embeddings N(0, 0.02),
summed, layer-normed, dropout; at each masked position an output head (dense 64 -> 64, GELU,
layer norm) scores every item by a dot product with the item embeddings plus an output bias, and
a softmax cross-entropy over all items is trained (the cloze task). Adam lr 1e-3 (betas 0.9,
0.999). The PyTorch model follows the original FeiSun/BERT4Rec (post-norm BERT blocks, tied output
embeddings with bias, head dense + GELU + layer norm, loss gathered at the masked positions only)
in PyTorch modules (nn.TransformerEncoderLayer computes exactly ember's block), as the PyTorch
port jaywonchung/BERT4Rec-VAE-Pytorch does for its encoder.

Data, as ember draws it (crates/ember-train/src/bench.rs, ember-data's sequences.rs): `samples`
users (default every user of --size), each with `per_user` distinct uniform items in a random
order (fixed seed). An epoch: the users shuffled; each user's window is their last 50 items,
left-padded; each item is replaced by the mask token with probability 0.2 (the last item when
none was) and the masked items are the targets; batches of `batch` windows. Examples are targets
(random: about 0.2 per item, so the two sides' counts differ slightly). Each epoch's masks are
drawn afresh inside the timed region (ember's figure includes building its batches); the device
is synchronised at both ends. The figure is the last epoch's, the others being warm-up.

    python3 scripts/bench_torch_bert4rec.py --torch-device cpu --ember-device flex --batch 256
    python3 scripts/bench_torch_bert4rec.py --torch-device cuda --ember-device wgpu --batch 256

It runs `ember bench train --model bert4rec ... --json` (the binary given by --ember)
first, then PyTorch (whose worker threads would otherwise still spin during ember's run),
and prints both figures and ratio=ember/pytorch (examples per second; > 1: ember is
faster). --skip-ember or --skip-torch runs one side only.
"""
import sys
import time

import numpy as np

from peer_bench import SIZES, run, synthetic_interactions

HIDDEN, BLOCKS, HEADS, MAX_LEN, DROPOUT, MASK_PROB = 64, 2, 2, 50, 0.1, 0.2


def masked_item_epoch(rng, train, num_items):
    """Every user's window (shuffled) with items masked, the flat target positions and items."""
    users, per_user = train.shape
    kept = min(per_user, MAX_LEN)
    first = MAX_LEN - kept
    seqs = train[rng.permutation(users)][:, per_user - kept:]
    masked = rng.random((users, kept)) < MASK_PROB
    masked[~masked.any(1), kept - 1] = True  # the last item when none was drawn
    inputs = np.zeros((users, MAX_LEN), np.int64)
    inputs[:, first:] = np.where(masked, num_items + 1, seqs + 1)
    return inputs, masked, seqs


def torch_bench(args):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class BERT4Rec(nn.Module):
        def __init__(s, num_items):
            super().__init__()
            s.num_items = num_items
            s.item_emb = nn.Embedding(num_items + 2, HIDDEN)  # padding, items, mask token
            s.pos_emb = nn.Embedding(MAX_LEN, HIDDEN)
            nn.init.normal_(s.item_emb.weight, std=0.02)
            nn.init.normal_(s.pos_emb.weight, std=0.02)
            s.emb_norm = nn.LayerNorm(HIDDEN, eps=1e-12)
            s.dropout = nn.Dropout(DROPOUT)
            s.blocks = nn.ModuleList(
                nn.TransformerEncoderLayer(HIDDEN, HEADS, 4 * HIDDEN, DROPOUT, activation="gelu",
                                           layer_norm_eps=1e-12, batch_first=True)
                for _ in range(BLOCKS))
            s.head = nn.Linear(HIDDEN, HIDDEN)
            s.head_norm = nn.LayerNorm(HIDDEN, eps=1e-12)
            s.out_bias = nn.Parameter(torch.zeros(num_items))

        def forward(s, seq):
            length = seq.shape[1]
            pad = seq == 0
            x = s.item_emb(seq) + s.pos_emb.weight[MAX_LEN - length:]
            x = s.dropout(s.emb_norm(x)) * (~pad).unsqueeze(-1)
            for block in s.blocks:
                x = block(x, src_key_padding_mask=pad)
            return x

        def logits(s, h):
            h = s.head_norm(F.gelu(s.head(h)))
            return h @ s.item_emb.weight[1:s.num_items + 1].T + s.out_bias

    dev = args.torch_device
    torch.manual_seed(42)
    rng = np.random.default_rng(42)
    users, items, per_user = SIZES[args.size]
    users = min(args.samples or users, users)
    train = synthetic_interactions(users, items, per_user, 42)
    model = BERT4Rec(items).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sync = torch.cuda.synchronize if dev.startswith("cuda") else (lambda: None)
    results = []
    for epoch in range(args.epochs):
        sync()
        t = time.perf_counter()
        inputs, masked, seqs = masked_item_epoch(rng, train, items)
        first = MAX_LEN - masked.shape[1]
        loss_sum, examples = torch.zeros((), device=dev), 0
        for lo in range(0, users, args.batch):
            hi = min(lo + args.batch, users)
            rows, cols = np.nonzero(masked[lo:hi])
            # Flat positions of the targets (row * MAX_LEN + t) and their items, as ember's batches.
            at = torch.from_numpy(rows * MAX_LEN + first + cols).to(dev)
            target = torch.from_numpy(seqs[lo:hi][rows, cols]).to(dev)
            seq = torch.from_numpy(inputs[lo:hi]).to(dev)
            h = model(seq).reshape(-1, HIDDEN)[at]
            loss = F.cross_entropy(model.logits(h), target)
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
    run(__doc__, "bert4rec", "BERT4Rec", "targets", 256, "windows (users) per step", "games", torch_bench)


if __name__ == "__main__":
    main()
