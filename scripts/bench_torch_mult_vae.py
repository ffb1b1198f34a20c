#!/usr/bin/env python3
"""Mult-VAE training throughput, PyTorch beside ember, on this machine, with identical settings.

The model is ember's `bench train` Mult-VAE preset (Liang et al. 2018): each user's row of the
user x item matrix, L2-normalised, dropout 0.5 on the input, encoder I -> 600 (tanh) -> 2 x 200
(mean and log-variance), a reparameterised sample of the code, decoder 200 -> 600 (tanh) -> I;
loss the multinomial negative log-likelihood (-sum x log softmax, averaged over the batch's
users) plus beta * KL(q(z|x) || N(0, I)), beta annealed as min(step / 200,000, 0.2) over
optimiser steps; Xavier-uniform weights. Adam lr 1e-3 (betas 0.9, 0.999). The PyTorch model
follows dawenl/vae_cf and its PyTorch port younggyoseo/vae-cf-pytorch (MultiVAE, loss_function,
the annealing), with ember's sizes.

Data, as ember draws it (crates/ember-train/src/bench.rs and batches.rs): `samples` users
(default every user of --size), each with `per_user` distinct uniform items (fixed seed). An
epoch: the users shuffled, in batches of `batch` users whose dense [batch, items] 0/1 rows are
built on the host and copied to the device one batch at a time (the last batch may be smaller).
Examples are users. The shuffle and the rows are made inside the timed region (ember's figure
includes building its batches); the device is synchronised at both ends. The figure is the last
epoch's, the others being warm-up.

    python3 scripts/bench_torch_mult_vae.py --torch-device cpu --ember-device flex --batch 500
    python3 scripts/bench_torch_mult_vae.py --torch-device cuda --ember-device wgpu --batch 500 --size ml20m

It runs `ember bench train --model mult_vae ... --json` (the binary given by --ember)
first, then PyTorch (whose worker threads would otherwise still spin during ember's run),
and prints both figures and ratio=ember/pytorch (examples per second; > 1: ember is
faster). --skip-ember or --skip-torch runs one side only.
"""
import sys
import time

import numpy as np

from peer_bench import SIZES, run, synthetic_interactions

HIDDEN, CODE, DROPOUT, BETA, ANNEAL_STEPS = 600, 200, 0.5, 0.2, 200_000


def torch_bench(args):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class MultVAE(nn.Module):
        def __init__(s, num_items):
            super().__init__()
            s.q_layers = nn.ModuleList([nn.Linear(num_items, HIDDEN), nn.Linear(HIDDEN, 2 * CODE)])
            s.p_layers = nn.ModuleList([nn.Linear(CODE, HIDDEN), nn.Linear(HIDDEN, num_items)])
            s.drop = nn.Dropout(DROPOUT)
            for layer in [*s.q_layers, *s.p_layers]:
                nn.init.xavier_uniform_(layer.weight)

        def encode(s, x):
            h = s.drop(F.normalize(x))
            h = s.q_layers[1](torch.tanh(s.q_layers[0](h)))
            return h[:, :CODE], h[:, CODE:]

        def forward(s, x):
            mu, logvar = s.encode(x)
            z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
            return s.p_layers[1](torch.tanh(s.p_layers[0](z))), mu, logvar

    def loss_function(recon_x, x, mu, logvar, anneal):
        nll = -torch.mean(torch.sum(F.log_softmax(recon_x, 1) * x, -1))
        kld = -0.5 * torch.mean(torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1))
        return nll + anneal * kld

    dev = args.torch_device
    torch.manual_seed(42)
    rng = np.random.default_rng(42)
    users, items, per_user = SIZES[args.size]
    users = min(args.samples or users, users)
    train = synthetic_interactions(users, items, per_user, 42)
    model = MultVAE(items).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sync = torch.cuda.synchronize if dev.startswith("cuda") else (lambda: None)
    steps, results = 0, []
    for epoch in range(args.epochs):
        sync()
        t = time.perf_counter()
        order = rng.permutation(users)
        loss_sum, examples = torch.zeros((), device=dev), 0
        for lo in range(0, users, args.batch):
            chunk = order[lo:lo + args.batch]
            rows = np.zeros((len(chunk), items), np.float32)  # dense rows, made on the host
            rows[np.arange(len(chunk))[:, None], train[chunk]] = 1.0
            x = torch.from_numpy(rows).to(dev)
            recon, mu, logvar = model(x)
            loss = loss_function(recon, x, mu, logvar, min(steps / ANNEAL_STEPS, BETA))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            steps += 1
            loss_sum += loss.detach() * len(chunk)
            examples += len(chunk)
        mean_loss = loss_sum.item() / examples
        sync()
        secs = time.perf_counter() - t
        results.append((examples / secs, secs, examples))
        print(f"torch epoch {epoch}: {secs:.3f} s, {examples / secs:.0f} users/s, loss {mean_loss:.4f}",
              file=sys.stderr, flush=True)
    return results[-1]


def main():
    run(__doc__, "mult_vae", "Mult-VAE", "users", 500, "users per step", "probe", torch_bench)


if __name__ == "__main__":
    main()
