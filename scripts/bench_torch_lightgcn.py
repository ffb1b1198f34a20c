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

It runs PyTorch first, then `ember bench train --model lightgcn ... --json` (the binary given by
--ember), and prints both figures and ratio=ember/pytorch (examples per second; > 1: ember is
faster). --skip-ember or --skip-torch runs one side only.
"""
import argparse
import json
import subprocess
import sys
import time

import numpy as np

# (users, items, items per user): ember's BenchSize.
SIZES = {"probe": (6040, 3706, 165), "ml20m": (138493, 26744, 144), "games": (31013, 23715, 10)}
FACTORS, LAYERS, REG, INIT_STD = 64, 3, 1e-4, 0.1


def synthetic_interactions(users, items, per_user, seed):
    """[users, per_user]: each user's distinct uniform items, in a random ("time") order."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.choice(items, min(per_user, items), replace=False) for _ in range(users)])


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


def ember_bench(args):
    cmd = [args.ember, "bench", "train", "--model", "lightgcn", "--device", args.ember_device,
           "--batch", str(args.batch), "--epochs", str(args.epochs), "--size", args.size, "--json"]
    if args.samples:
        cmd += ["--samples", str(args.samples)]
    out = subprocess.run(cmd + args.ember_args, check=True, stdout=subprocess.PIPE, text=True).stdout
    report = json.loads(out.strip().splitlines()[-1])
    return report["examples_per_sec"], report["epoch_secs"], report["samples"]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--torch-device", default="cpu", help="cpu or cuda")
    p.add_argument("--ember-device", default="flex", help="flex, ndarray, wgpu or vulkan")
    p.add_argument("--ember", default="target/release/ember", help="the ember binary")
    p.add_argument("--batch", type=int, default=2048, help="positives per step")
    p.add_argument("--samples", type=int, default=None, help="users per epoch (default: all of --size)")
    p.add_argument("--epochs", type=int, default=3, help="the last is reported, the others warm up")
    p.add_argument("--size", choices=sorted(SIZES), default="probe")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default 2 on the CPU)")
    p.add_argument("--skip-torch", action="store_true")
    p.add_argument("--skip-ember", action="store_true")
    p.add_argument("ember_args", nargs="*", help="extra arguments for `ember bench train` (after --)")
    args = p.parse_args()

    users = min(args.samples or SIZES[args.size][0], SIZES[args.size][0])
    setting = f"LightGCN {args.size} batch {args.batch} users {users} epochs {args.epochs}"
    torch_res = ember_res = None
    if not args.skip_torch:
        import torch
        threads = args.threads or (2 if args.torch_device == "cpu" else None)
        if threads:
            torch.set_num_threads(threads)
        torch_res = torch_bench(args)
        print(f"pytorch {args.torch_device} ({torch.get_num_threads()} threads): {torch_res[0]:,.0f} positives/s, "
              f"{torch_res[1]:.3f} s/epoch, {torch_res[2]:,} positives/epoch  ({setting})", flush=True)
    if not args.skip_ember:
        ember_res = ember_bench(args)
        print(f"ember {args.ember_device}: {ember_res[0]:,.0f} positives/s, {ember_res[1]:.3f} s/epoch, "
              f"{ember_res[2]:,} positives/epoch  ({setting})", flush=True)
    if torch_res and ember_res:
        print(f"ratio={ember_res[0] / torch_res[0]:.2f} (ember/pytorch positives per second; "
              f"ember {ember_res[1]:.3f} s/epoch, pytorch {torch_res[1]:.3f} s/epoch)")


if __name__ == "__main__":
    main()
