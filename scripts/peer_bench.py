"""What the PyTorch peer scripts (`scripts/bench_torch_<family>.py`) share: ember's bench sizes
and synthetic data, running `ember bench train --json`, the command line and the report that
ends with `ratio=X` (ember's speed over PyTorch's)."""
import argparse
import json
import subprocess

import numpy as np

# (users, items, items per user): ember's BenchSize.
SIZES = {"probe": (6040, 3706, 165), "ml20m": (138493, 26744, 144), "games": (31013, 23715, 10)}


def synthetic_interactions(users, items, per_user, seed):
    """[users, per_user]: each user's distinct uniform items, in a random ("time") order."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.choice(items, min(per_user, items), replace=False) for _ in range(users)])


def ember_bench(args, model):
    """(examples/s, s/epoch, examples/epoch) of `ember bench train --model MODEL`."""
    cmd = [args.ember, "bench", "train", "--model", model, "--device", args.ember_device,
           "--batch", str(args.batch), "--epochs", str(args.epochs), "--size", args.size, "--json"]
    if args.samples:
        cmd += ["--samples", str(args.samples)]
    out = subprocess.run(cmd + args.ember_args, check=True, stdout=subprocess.PIPE, text=True).stdout
    report = json.loads(out.strip().splitlines()[-1])
    return report["examples_per_sec"], report["epoch_secs"], report["samples"]


def run(doc, model, label, unit, batch, batch_help, size, torch_bench):
    """Parses the command line, runs `torch_bench(args)` and ember's bench, prints both and the
    ratio. `unit` names the examples (targets, positives, users)."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--torch-device", default="cpu", help="cpu or cuda")
    p.add_argument("--ember-device", default="flex", help="flex, ndarray, wgpu or vulkan")
    p.add_argument("--ember", default="target/release/ember", help="the ember binary")
    p.add_argument("--batch", type=int, default=batch, help=batch_help)
    p.add_argument("--samples", type=int, default=None, help="users per epoch (default: all of --size)")
    p.add_argument("--epochs", type=int, default=3, help="the last is reported, the others warm up")
    p.add_argument("--size", choices=sorted(SIZES), default=size)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default 2 on the CPU)")
    p.add_argument("--skip-torch", action="store_true")
    p.add_argument("--skip-ember", action="store_true")
    p.add_argument("ember_args", nargs="*", help="extra arguments for `ember bench train` (after --)")
    args = p.parse_args()

    users = min(args.samples or SIZES[args.size][0], SIZES[args.size][0])
    setting = f"{label} {args.size} batch {args.batch} users {users} epochs {args.epochs}"
    torch_res = ember_res = None
    # ember first, before torch is imported here: torch's worker threads keep spinning for a
    # while after their last parallel region, and would take cores from a run started after it.
    if not args.skip_ember:
        ember_res = ember_bench(args, model)
        print(f"ember {args.ember_device}: {ember_res[0]:,.0f} {unit}/s, {ember_res[1]:.3f} s/epoch, "
              f"{ember_res[2]:,} {unit}/epoch  ({setting})", flush=True)
    if not args.skip_torch:
        import torch
        threads = args.threads or (2 if args.torch_device == "cpu" else None)
        if threads:
            torch.set_num_threads(threads)
        torch_res = torch_bench(args)
        print(f"pytorch {args.torch_device} ({torch.get_num_threads()} threads): {torch_res[0]:,.0f} {unit}/s, "
              f"{torch_res[1]:.3f} s/epoch, {torch_res[2]:,} {unit}/epoch  ({setting})", flush=True)
    if torch_res and ember_res:
        print(f"ratio={ember_res[0] / torch_res[0]:.2f} (ember/pytorch {unit} per second; "
              f"ember {ember_res[1]:.3f} s/epoch, pytorch {torch_res[1]:.3f} s/epoch)")
