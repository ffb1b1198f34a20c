#!/usr/bin/env python3
"""The PyTorch peer of ember's SASRec, for side-by-side training throughput on one machine.

A compact copy of the widely used PyTorch reimplementation of SASRec (pmixer/SASRec.pytorch):
the same data partition (last item test, second last validation, users with fewer than 3 items
train only), the same model (hidden 50, 2 blocks, 1 head, window 50, dropout 0.5, query-only
layer norm before attention, point-wise ReLU feed-forward), BCE with one negative per position,
Adam (lr 1e-3, betas 0.9/0.98), batch 128, 242 batches per epoch of users drawn at random.

Usage: scripts/torch_sasrec.py ../shared/datasets/sasrec/Video.txt --epochs 3 --threads 1
Prints seconds per epoch, and with --eval the test HR@10 / NDCG@10 against 100 uniform
negatives (all users).
"""

import argparse
import random
import time
from collections import defaultdict

import numpy as np
import torch


def partition(path):
    seqs = defaultdict(list)
    with open(path) as f:
        for line in f:
            u, i = line.split()
            seqs[int(u)].append(int(i))
    num_items = max(max(s) for s in seqs.values())
    train, valid, test = {}, {}, {}
    for u, s in seqs.items():
        if len(s) < 3:
            train[u], valid[u], test[u] = s, [], []
        else:
            train[u], valid[u], test[u] = s[:-2], [s[-2]], [s[-1]]
    return train, valid, test, num_items


def sample_batch(train, users, num_items, max_len, batch_size, rng):
    seq = np.zeros((batch_size, max_len), dtype=np.int64)
    pos = np.zeros_like(seq)
    neg = np.zeros_like(seq)
    for b in range(batch_size):
        u = rng.choice(users)
        items = train[u]
        seen = set(items)
        nxt, idx = items[-1], max_len - 1
        for i in reversed(items[:-1]):
            seq[b, idx], pos[b, idx] = i, nxt
            n = rng.randint(1, num_items)
            while n in seen:
                n = rng.randint(1, num_items)
            neg[b, idx] = n
            nxt, idx = i, idx - 1
            if idx == -1:
                break
    return seq, pos, neg


class FeedForward(torch.nn.Module):
    def __init__(self, hidden, dropout):
        super().__init__()
        self.conv1 = torch.nn.Conv1d(hidden, hidden, kernel_size=1)
        self.conv2 = torch.nn.Conv1d(hidden, hidden, kernel_size=1)
        self.dropout1 = torch.nn.Dropout(dropout)
        self.dropout2 = torch.nn.Dropout(dropout)

    def forward(self, x):
        y = self.dropout2(self.conv2(torch.relu(self.dropout1(self.conv1(x.transpose(-1, -2))))))
        return y.transpose(-1, -2) + x


class SASRec(torch.nn.Module):
    def __init__(self, num_items, hidden=50, blocks=2, heads=1, max_len=50, dropout=0.5):
        super().__init__()
        self.item_emb = torch.nn.Embedding(num_items + 1, hidden, padding_idx=0)
        self.pos_emb = torch.nn.Embedding(max_len + 1, hidden, padding_idx=0)
        self.emb_dropout = torch.nn.Dropout(dropout)
        self.attn_norms = torch.nn.ModuleList()
        self.attns = torch.nn.ModuleList()
        self.ffn_norms = torch.nn.ModuleList()
        self.ffns = torch.nn.ModuleList()
        for _ in range(blocks):
            self.attn_norms.append(torch.nn.LayerNorm(hidden, eps=1e-8))
            self.attns.append(torch.nn.MultiheadAttention(hidden, heads, dropout, batch_first=True))
            self.ffn_norms.append(torch.nn.LayerNorm(hidden, eps=1e-8))
            self.ffns.append(FeedForward(hidden, dropout))
        self.last_norm = torch.nn.LayerNorm(hidden, eps=1e-8)
        for p in self.parameters():
            if p.dim() > 1:
                torch.nn.init.xavier_normal_(p)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()
            self.pos_emb.weight[0].zero_()

    def feats(self, seq):
        x = self.item_emb(seq) * self.item_emb.embedding_dim ** 0.5
        positions = torch.arange(1, seq.shape[1] + 1, device=seq.device).expand_as(seq) * (seq != 0)
        x = self.emb_dropout(x + self.pos_emb(positions))
        keep = (seq != 0).unsqueeze(-1)
        x = x * keep
        length = seq.shape[1]
        causal = ~torch.tril(torch.ones((length, length), dtype=torch.bool, device=seq.device))
        for norm, attn, ffn_norm, ffn in zip(self.attn_norms, self.attns, self.ffn_norms, self.ffns):
            q = norm(x)
            out, _ = attn(q, x, x, attn_mask=causal, need_weights=False)
            x = ffn(ffn_norm(q + out)) * keep
        return self.last_norm(x)

    def forward(self, seq, pos, neg):
        h = self.feats(seq)
        return (h * self.item_emb(pos)).sum(-1), (h * self.item_emb(neg)).sum(-1)

    def predict(self, seq, items):
        h = self.feats(seq)[:, -1, :]
        return (self.item_emb(items) * h.unsqueeze(1)).sum(-1)


def evaluate(model, train, valid, test, num_items, max_len, rng):
    hits = ndcg = users = 0
    model.eval()
    with torch.no_grad():
        batch_seq, batch_items = [], []
        evaluated = [u for u in train if test[u]]
        for u in evaluated:
            history = (train[u] + valid[u])[-max_len:]
            batch_seq.append([0] * (max_len - len(history)) + history)
            seen = set(train[u]) | set(valid[u]) | set(test[u])
            items = [test[u][0]]
            while len(items) < 101:
                n = rng.randint(1, num_items)
                if n not in seen:
                    items.append(n)
                    seen.add(n)
            batch_items.append(items)
        for start in range(0, len(evaluated), 1024):
            seq = torch.tensor(batch_seq[start:start + 1024])
            items = torch.tensor(batch_items[start:start + 1024])
            scores = model.predict(seq, items)
            rank = (scores[:, 1:] >= scores[:, :1]).sum(1)
            hits += (rank < 10).sum().item()
            ndcg += torch.where(rank < 10, 1.0 / torch.log2(rank.float() + 2), 0.0).sum().item()
            users += len(seq)
    model.train()
    return hits / users, ndcg / users


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--eval", action="store_true")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    train, valid, test, num_items = partition(args.data)
    users = [u for u, s in train.items() if len(s) > 1]
    model = SASRec(num_items)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.98))
    bce = torch.nn.BCEWithLogitsLoss()
    batches = len(train) // 128
    for epoch in range(1, args.epochs + 1):
        started = time.perf_counter()
        total = 0.0
        for _ in range(batches):
            seq, pos, neg = (torch.from_numpy(a) for a in sample_batch(train, users, num_items, 50, 128, rng))
            pos_logits, neg_logits = model(seq, pos, neg)
            mask = pos != 0
            loss = bce(pos_logits[mask], torch.ones_like(pos_logits[mask])) + bce(
                neg_logits[mask], torch.zeros_like(neg_logits[mask])
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item()
        seconds = time.perf_counter() - started
        line = f"epoch {epoch}: loss {total / batches:.4f}, {seconds:.1f} s"
        if args.eval:
            hr, nd = evaluate(model, train, valid, test, num_items, 50, rng)
            line += f", test HR@10 {hr:.4f} NDCG@10 {nd:.4f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
