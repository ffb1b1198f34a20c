"""PyTorch NeuMF on the NCF-format MovieLens-100K split: an independent implementation to check
ember's training against (same model, loss, sampling and protocol).

Usage: python3 scripts/torch_ncf_reference.py [PREFIX] [EPOCHS] [SEED] [INIT_STD]
PREFIX defaults to ../shared/datasets/ncf-ml-100k/ml-100k.

Trains on all of <prefix>.train.rating (NeuMF: GMF factors 16, MLP embeddings 64+64, MLP
128-64-32-16, 4 negatives per positive resampled each epoch, Adam lr 1e-3, batches of 256 shuffled pointwise examples) and prints,
after every epoch, HR@10 and NDCG@10 of the test item ranked against its 99 fixed negatives
(a negative scoring equal to the positive ranks above it, as ember does). It reports every epoch
on test, so its best epoch is chosen on test: use it to compare implementations, not to report.
"""
import math, random, sys, time
import numpy as np
import torch, torch.nn as nn, torch.nn.functional as F

prefix = sys.argv[1] if len(sys.argv) > 1 else "../shared/datasets/ncf-ml-100k/ml-100k"
epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 20
seed = int(sys.argv[3]) if len(sys.argv) > 3 else 0
init_std = float(sys.argv[4]) if len(sys.argv) > 4 else 0.01
torch.manual_seed(seed); random.seed(seed); np.random.seed(seed)

train = [tuple(map(int, l.split("\t")[:2])) for l in open(prefix + ".train.rating")]
test = [tuple(map(int, l.split("\t")[:2])) for l in open(prefix + ".test.rating")]
negatives = [list(map(int, l.rstrip("\n").split("\t")[1:])) for l in open(prefix + ".test.negative")]
n_users = 1 + max(max(u for u, _ in train), max(u for u, _ in test))
n_items = 1 + max(max(i for _, i in train), max(i for _, i in test), max(max(n) for n in negatives))
seen = [set() for _ in range(n_users)]
for u, i in train:
    seen[u].add(i)

class NeuMF(nn.Module):
    def __init__(s, f=16, mlp=(128, 64, 32, 16)):
        super().__init__()
        s.gu, s.gi = nn.Embedding(n_users, f), nn.Embedding(n_items, f)
        s.mu, s.mi = nn.Embedding(n_users, mlp[0] // 2), nn.Embedding(n_items, mlp[0] // 2)
        for e in (s.gu, s.gi, s.mu, s.mi):
            nn.init.normal_(e.weight, std=init_std)
        s.tower = nn.ModuleList(nn.Linear(a, b) for a, b in zip(mlp, mlp[1:]))
        s.out = nn.Linear(f + mlp[-1], 1)
    def forward(s, u, i):
        h = torch.cat([s.mu(u), s.mi(i)], 1)
        for layer in s.tower:
            h = F.relu(layer(h))
        return s.out(torch.cat([s.gu(u) * s.gi(i), h], 1)).squeeze(1)

model = NeuMF()
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
tu = torch.tensor([u for u, _ in test]).repeat_interleave(100)
ti = torch.tensor([i for u, i in test for i in [i] + negatives[u][:99]])

def evaluate():
    with torch.no_grad():
        s = model(tu, ti).view(len(test), 100)
    pos = s[:, :1]
    rank = (s[:, 1:] >= pos).sum(1)  # 0-based rank, ties against the positive
    hit = (rank < 10).float()
    ndcg = hit / torch.log2(rank.float() + 2)
    return hit.mean().item(), ndcg.mean().item()

for epoch in range(1, epochs + 1):
    t = time.time()
    users, items, labels = [], [], []
    for u, i in train:
        users.append(u); items.append(i); labels.append(1.0)
        for _ in range(4):
            j = random.randrange(n_items)
            while j in seen[u]:
                j = random.randrange(n_items)
            users.append(u); items.append(j); labels.append(0.0)
    perm = torch.randperm(len(users))
    U, I, Y = torch.tensor(users)[perm], torch.tensor(items)[perm], torch.tensor(labels)[perm]
    for b in range(0, len(U), 256):  # 256 pointwise examples (positives and negatives mixed)
        loss = F.binary_cross_entropy_with_logits(model(U[b:b + 256], I[b:b + 256]), Y[b:b + 256])
        opt.zero_grad(); loss.backward(); opt.step()
    hr, ndcg = evaluate()
    print(f"epoch {epoch} loss {loss.item():.4f} test HR@10 {hr:.4f} NDCG@10 {ndcg:.4f} ({time.time() - t:.1f}s)", flush=True)
