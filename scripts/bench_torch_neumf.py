#!/usr/bin/env python3
"""NeuMF training throughput, PyTorch beside ember, on this machine, with identical settings.

The model is ember's `bench train` NeuMF: factors 32 (GMF embeddings 32, MLP embeddings 64 each),
MLP 128 -> 64 -> 32 -> 16 with ReLU, output on [GMF || MLP], BCE on logits, Adam lr 1e-3.
Data: `samples` uniform (user, item) pairs from a fixed seed, label (user + item) % 5 == 0.
Each epoch is timed (device synchronised at both ends); the figure is the last epoch's, the
others being warm-up. By default PyTorch copies each batch's ids host -> device, as the peer in
../shared/bench/torch_neumf.py does; --preload keeps the epoch on the device, as ember does.

    python3 scripts/bench_torch_neumf.py --torch-device cuda --ember-device wgpu --batch 65536
    python3 scripts/bench_torch_neumf.py --torch-device cpu --ember-device flex --batch 4096

It runs `ember bench train ... --json` (the binary given by --ember) first, then PyTorch (whose
worker threads would otherwise still spin during ember's run), and prints both figures and
ratio=ember/pytorch. --skip-ember or --skip-torch runs one side only.

On a shared machine one epoch can be slowed by other work, and a single ratio then says little.
--rounds R runs the pair R times in turn (PyTorch in a child process each time, so that its
threads are gone before ember's next run), prints every round, and ends with the median ratio
and the range.
"""
import re
import statistics
import argparse
import json
import subprocess
import sys
import time

SIZES = {"probe": (6040, 3706), "ml20m": (138493, 26744)}


def torch_bench(args):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    users, items = SIZES[args.size]
    d = 32

    class NeuMF(nn.Module):
        def __init__(s):
            super().__init__()
            s.gu, s.gi = nn.Embedding(users, d), nn.Embedding(items, d)
            s.mu, s.mi = nn.Embedding(users, 2 * d), nn.Embedding(items, 2 * d)
            s.l1, s.l2, s.l3 = nn.Linear(4 * d, 2 * d), nn.Linear(2 * d, d), nn.Linear(d, d // 2)
            s.out = nn.Linear(d + d // 2, 1)
            # ember's (and the NCF paper's) embedding init; nn.Embedding's own is N(0, 1).
            for e in (s.gu, s.gi, s.mu, s.mi):
                nn.init.normal_(e.weight, std=0.01)

        def forward(s, u, i):
            g = s.gu(u) * s.gi(i)
            h = torch.cat([s.mu(u), s.mi(i)], 1)
            h = F.relu(s.l3(F.relu(s.l2(F.relu(s.l1(h))))))
            return s.out(torch.cat([g, h], 1)).squeeze(1)

    dev = args.torch_device
    if dev == "cpu":
        torch.set_num_threads(args.threads)
    torch.manual_seed(42)
    gen = torch.Generator().manual_seed(42)
    n = args.samples
    us = torch.randint(0, users, (n,), generator=gen)
    its = torch.randint(0, items, (n,), generator=gen)
    ys = ((us + its) % 5 == 0).float()
    if args.preload:
        us, its, ys = us.to(dev), its.to(dev), ys.to(dev)
    model = NeuMF().to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    step_model = torch.compile(model) if args.compile else model
    sync = torch.cuda.synchronize if dev.startswith("cuda") else (lambda: None)
    steps = n // args.batch
    rates = []
    for epoch in range(args.epochs):
        sync()
        t = time.perf_counter()
        total = torch.zeros((), device=dev)
        for s in range(steps):
            lo, hi = s * args.batch, (s + 1) * args.batch
            u, i, y = us[lo:hi].to(dev), its[lo:hi].to(dev), ys[lo:hi].to(dev)
            loss = F.binary_cross_entropy_with_logits(step_model(u, i), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach()
        last = total.item() / steps  # the epoch's mean loss, as ember reports
        sync()
        secs = time.perf_counter() - t
        rates.append(steps * args.batch / secs)
        print(f"torch epoch {epoch}: {secs:.3f} s, {rates[-1]:.0f} samples/s, loss {last:.4f}",
              file=sys.stderr, flush=True)
    peak = torch.cuda.max_memory_allocated() if dev.startswith("cuda") else None
    return rates[-1], peak


def ember_bench(args):
    cmd = [args.ember, "bench", "train", "--model", "neumf", "--device", args.ember_device,
           "--batch", str(args.batch), "--samples", str(args.samples), "--epochs",
           str(args.epochs), "--size", args.size, "--json"] + args.ember_args
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    report = json.loads(out.strip().splitlines()[-1])
    return report["samples_per_sec"], report.get("peak_memory_bytes"), report


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--torch-device", default="cpu", help="cpu or cuda")
    p.add_argument("--ember-device", default="flex", help="flex, ndarray, wgpu or vulkan")
    p.add_argument("--ember", default="target/release/ember", help="the ember binary")
    p.add_argument("--batch", type=int, default=4096)
    p.add_argument("--samples", type=int, default=1_000_000)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--size", choices=sorted(SIZES), default="probe")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--threads", type=int, default=2, help="torch threads on the CPU (default 2)")
    p.add_argument("--preload", action="store_true", help="keep PyTorch's epoch on the device")
    p.add_argument("--skip-torch", action="store_true")
    p.add_argument("--skip-ember", action="store_true")
    p.add_argument("--rounds", type=int, default=1, help="pairs run in turn; reports the median ratio")
    p.add_argument("ember_args", nargs="*", help="extra arguments for `ember bench train` (after --)")
    args = p.parse_args()

    if args.rounds > 1:
        return rounds(args)
    setting = f"NeuMF {args.size} batch {args.batch} samples {args.samples} epochs {args.epochs}"
    torch_rate = ember_rate = None
    # ember first, before torch is imported here: torch's worker threads keep spinning for a
    # while after their last parallel region, and would take cores from a run started after it.
    if not args.skip_ember:
        ember_rate, peak, report = ember_bench(args)
        mem = f", peak {peak / 2**20:.0f} MiB ({report['peak_memory_kind']})" if peak else ""
        print(f"ember {args.ember_device} ({report['embedding_gradient']}, split-k {report['split_k']}): "
              f"{ember_rate:,.0f} samples/s{mem}  ({setting})", flush=True)
    if not args.skip_torch:
        torch_rate, peak = torch_bench(args)
        mode = "compile" if args.compile else "eager"
        mem = f", peak allocated {peak / 2**20:.0f} MiB" if peak else ""
        print(f"pytorch {mode} {args.torch_device}: {torch_rate:,.0f} samples/s{mem}  ({setting})", flush=True)
    if torch_rate and ember_rate:
        print(f"ratio={ember_rate / torch_rate:.2f} (ember/pytorch samples per second)")


def rounds(args):
    """Runs ember and PyTorch in turn `args.rounds` times and prints the median ratio."""
    torch_cmd = [sys.executable, __file__, "--skip-ember", "--torch-device", args.torch_device,
                 "--batch", str(args.batch), "--samples", str(args.samples), "--epochs",
                 str(args.epochs), "--size", args.size, "--threads", str(args.threads)]
    torch_cmd += ["--compile"] * args.compile + ["--preload"] * args.preload
    ratios = []
    for r in range(args.rounds):
        ember_rate, _, _ = ember_bench(args)
        out = subprocess.run(torch_cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
        found = re.search(r"^pytorch \S+ \S+: ([\d,]+) samples/s", out, re.MULTILINE)
        if not found:
            sys.exit(f"no PyTorch figure in the child's output:\n{out}")
        torch_rate = float(found.group(1).replace(",", ""))
        ratios.append(ember_rate / torch_rate)
        print(f"round {r + 1}: ember {ember_rate:,.0f}, pytorch {torch_rate:,.0f} samples/s, "
              f"ratio {ratios[-1]:.2f}", flush=True)
    print(f"ratio={statistics.median(ratios):.2f} (median of {args.rounds} rounds, "
          f"range {min(ratios):.2f}-{max(ratios):.2f}; ember/pytorch samples per second)")


if __name__ == "__main__":
    main()
