#!/usr/bin/env python3
"""LightGCN training throughput, PyTorch beside ember, on this machine, with identical settings.

The model is ember's `bench train` LightGCN preset (He et al. 2020): layer-0 user and item
embeddings of 64 factors, N(0, 0.1^2); every step propagates them over the whole normalised
bipartite graph (A_hat = D^-1/2 A D^-1/2 of the training interactions) for 3 layers as sparse
products and averages the 4 layers' embeddings; a pair scores e_u . e_i. Loss: BPR with one
uniform negative per positive (-mean log sigmoid(s+ - s-)) plus 1e-4 / 2 times the squared norm
of the batch's layer-0 user, positive and negative embeddings, divided by the batch's positives.
Adam lr 1e-3 (betas 0.9, 0.999). The PyTorch model follows gusye1234/LightGCN-PyTorch
(computer() with torch.sparse.mm over a coalesced sparse graph, bpr_loss with its reg_loss).

Data, as ember draws it (crates/ember-train/src/bench.rs, ember-data's sampling.rs
TrainingEpoch): `samples` users (default every user of --size), each with `per_user` distinct
uniform items (fixed seed); the graph holds these users and every item. An epoch: every (user,
positive) interaction once, shuffled, each with one uniform negative outside the user's items, in
batches of `batch` positives (the last may be smaller). Examples are positives. The shuffle and
the negatives are drawn afresh each epoch inside the timed region (ember's figure includes
building its batches); the device is synchronised at both ends. The figure is the last epoch's,
the others being warm-up.

    python3 scripts/bench_torch_lightgcn.py --torch-device cpu --ember-device flex --batch 2048
    python3 scripts/bench_torch_lightgcn.py --torch-device cuda --ember-device wgpu --batch 2048

It runs `ember bench train --model lightgcn ... --json` (the binary given by --ember)
first, then PyTorch (whose worker threads would otherwise still spin during ember's run),
and prints both figures and ratio=ember/pytorch (examples per second; > 1: ember is
faster). --skip-ember or --skip-torch runs one side only.
"""
import sys
import time

import numpy as np

from peer_bench import SIZES, run, synthetic_interactions

FACTORS, LAYERS, REG, INIT_STD = 64, 3, 1e-4, 0.1


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


def torch_bench(args):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    dev = args.torch_device
    torch.manual_seed(42)
    rng = np.random.default_rng(42)
    users, items, per_user = SIZES[args.size]
    users = min(args.samples or users, users)
    train = synthetic_interactions(users, items, per_user, 42)
    keys = np.sort((np.arange(users)[:, None] * items + train).ravel())
    pair_users = np.repeat(np.arange(users), train.shape[1])
    pair_items = train.ravel()

    # The normalised graph over nodes users ++ items, both directions of every interaction.
    degree = np.concatenate([np.full(users, train.shape[1]), np.bincount(pair_items, minlength=items)])
    src = np.concatenate([pair_users, users + pair_items])
    dst = np.concatenate([users + pair_items, pair_users])
    w = 1.0 / np.sqrt(degree[src].astype(np.float64) * degree[dst])
    graph = torch.sparse_coo_tensor(torch.from_numpy(np.stack([src, dst])), torch.from_numpy(w).float(),
                                    (users + items, users + items), check_invariants=True).coalesce().to(dev)

    class LightGCN(nn.Module):
        def __init__(s):
            super().__init__()
            s.embedding_user, s.embedding_item = nn.Embedding(users, FACTORS), nn.Embedding(items, FACTORS)
            nn.init.normal_(s.embedding_user.weight, std=INIT_STD)
            nn.init.normal_(s.embedding_item.weight, std=INIT_STD)

        def computer(s):
            all_emb = torch.cat([s.embedding_user.weight, s.embedding_item.weight])
            embs = [all_emb]
            for _ in range(LAYERS):
                all_emb = torch.sparse.mm(graph, all_emb)
                embs.append(all_emb)
            light_out = torch.mean(torch.stack(embs, dim=1), dim=1)
            return torch.split(light_out, [users, items])

        def bpr_loss(s, u, pos, neg):
            all_users, all_items = s.computer()
            users_emb, pos_emb, neg_emb = all_users[u], all_items[pos], all_items[neg]
            u0, p0, n0 = s.embedding_user(u), s.embedding_item(pos), s.embedding_item(neg)
            reg_loss = 0.5 * (u0.norm(2).pow(2) + p0.norm(2).pow(2) + n0.norm(2).pow(2)) / len(u)
            pos_scores = (users_emb * pos_emb).sum(1)
            neg_scores = (users_emb * neg_emb).sum(1)
            return F.softplus(neg_scores - pos_scores).mean() + REG * reg_loss

    model = LightGCN().to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sync = torch.cuda.synchronize if dev.startswith("cuda") else (lambda: None)
    n = len(pair_users)
    results = []
    for epoch in range(args.epochs):
        sync()
        t = time.perf_counter()
        order = rng.permutation(n)
        ep_users, ep_pos = pair_users[order], pair_items[order]
        ep_neg = uniform_negatives(rng, ep_users, items, keys)
        loss_sum, examples = torch.zeros((), device=dev), 0
        for lo in range(0, n, args.batch):
            hi = min(lo + args.batch, n)
            u, pos, neg = (torch.from_numpy(a[lo:hi]).to(dev) for a in (ep_users, ep_pos, ep_neg))
            loss = model.bpr_loss(u, pos, neg)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.detach() * (hi - lo)
            examples += hi - lo
        mean_loss = loss_sum.item() / examples
        sync()
        secs = time.perf_counter() - t
        results.append((examples / secs, secs, examples))
        print(f"torch epoch {epoch}: {secs:.3f} s, {examples / secs:.0f} positives/s, loss {mean_loss:.4f}",
              file=sys.stderr, flush=True)
    return results[-1]


def main():
    run(__doc__, "lightgcn", "LightGCN", "positives", 2048, "positives per step", "probe", torch_bench)


if __name__ == "__main__":
    main()
