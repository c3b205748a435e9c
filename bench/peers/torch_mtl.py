#!/usr/bin/env python3
"""PyTorch peer of bench/learner: the reference model of configs/reference.pbtxt
(PLE, 2 levels, 4 shared + 1 specific expert per task and level, experts 128 -> 64,
towers [64], 8 tasks = 7 binary + 1 regression, 8 sparse slots x 16 dims, 8 dense,
batch 512), trained on the same kind of synthetic batches with the same losses
(masked per-task BCE/MSE averaged over observed samples, PLE eq. 9) and optimizers
(Adam on dense parameters, Adagrad on sparse embedding gradients).

Written the way a PyTorch user would write it (one nn.Module per expert, as in
torch-rechub/DeepCTR-Torch). Prints one JSON line: {"value": samples_per_s, ...}.

  OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/peers/torch_mtl.py --threads 1 --seconds 10
  /usr/bin/python3 bench/peers/torch_mtl.py --device cuda [--compile] [--large]

--device cuda trains on the GPU with the batches already resident there (no host to
device copies are timed); --compile wraps the model in torch.compile (the warm-up
steps absorb compilation); --large is bench_learner's large variant (batch 8192,
16 slots x 64 dims, 16 shared experts per level, hidden 512).
"""
import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

SLOTS, DIM, DENSE, VOCAB = 8, 16, 8, 100_000
TASKS, BINARY = 8, 7
SHARED, SPECIFIC, HIDDEN, OUT, TOWER, LEVELS, BATCH = 4, 1, 128, 64, 64, 2, 512


def expert(d_in):
    return nn.Sequential(nn.Linear(d_in, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, OUT), nn.ReLU())


class PLE(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.ModuleList(nn.EmbeddingBag(VOCAB, DIM, mode="sum", sparse=True) for _ in range(SLOTS))
        d_in = SLOTS * DIM + DENSE
        self.levels = nn.ModuleList()
        for level in range(LEVELS):
            width = d_in if level == 0 else OUT
            last = level == LEVELS - 1
            lv = nn.Module()
            lv.specific = nn.ModuleList(nn.ModuleList(expert(width) for _ in range(SPECIFIC)) for _ in range(TASKS))
            lv.shared = nn.ModuleList(expert(width) for _ in range(SHARED))
            lv.gates = nn.ModuleList(nn.Linear(width, SPECIFIC + SHARED, bias=False) for _ in range(TASKS))
            lv.shared_gate = None if last else nn.Linear(width, TASKS * SPECIFIC + SHARED, bias=False)
            self.levels.append(lv)
        self.towers = nn.ModuleList(
            nn.Sequential(nn.Linear(OUT, TOWER), nn.ReLU(), nn.Linear(TOWER, 1)) for _ in range(TASKS))

    def forward(self, ids, offsets, dense):
        x = torch.cat([e(i, o) for e, i, o in zip(self.emb, ids, offsets)] + [dense], dim=1)
        task_in, shared_in = [x] * TASKS, x
        for lv in self.levels:
            spec = [[e(task_in[k]) for e in lv.specific[k]] for k in range(TASKS)]
            shared = [e(shared_in) for e in lv.shared]
            outs = []
            for k in range(TASKS):
                experts = torch.stack(spec[k] + shared, dim=1)              # (B, n, d)
                g = F.softmax(lv.gates[k](task_in[k]), dim=1).unsqueeze(2)  # (B, n, 1)
                outs.append((g * experts).sum(1))
            if lv.shared_gate is not None:
                experts = torch.stack([e for s in spec for e in s] + shared, dim=1)
                g = F.softmax(lv.shared_gate(shared_in), dim=1).unsqueeze(2)
                shared_in = (g * experts).sum(1)
            task_in = outs
        return torch.cat([t(h) for t, h in zip(self.towers, task_in)], dim=1)  # (B, T)


def masked_loss(logits, labels, masks, weights):
    total = logits.new_zeros(())
    for k in range(TASKS):
        # A task with no observed sample adds 0 (its masked sum is 0); clamping the
        # count instead of branching on it avoids a GPU sync and a graph break.
        n = masks[:, k].sum().clamp(min=1)
        if k < BINARY:
            l = F.binary_cross_entropy_with_logits(logits[:, k], labels[:, k], reduction="none")
        else:
            l = (logits[:, k] - labels[:, k]) ** 2
        total = total + (masks[:, k] * weights[:, k] * l).sum() / n
    return total


def batch(gen):
    u = torch.rand(SLOTS, BATCH, generator=gen)
    ids = [(VOCAB * u[s] ** 3).long() for s in range(SLOTS)]
    offsets = [torch.arange(BATCH) for _ in range(SLOTS)]
    dense = torch.randn(BATCH, DENSE, generator=gen)
    labels = (torch.rand(BATCH, TASKS, generator=gen) < 0.1).float()
    labels[:, BINARY] = torch.randn(BATCH, generator=gen).abs()
    return ids, offsets, dense, labels, torch.ones(BATCH, TASKS), torch.ones(BATCH, TASKS)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model")
    ap.add_argument("--large", action="store_true", help="bench_learner's large variant")
    args = ap.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("torch_mtl.py: --device cuda but torch sees no CUDA device")
    if args.compile and not hasattr(torch, "compile"):
        raise SystemExit("torch_mtl.py: --compile needs torch >= 2.0 (this is %s)" % torch.__version__)
    if args.large:
        global SLOTS, DIM, SHARED, HIDDEN, BATCH
        SLOTS, DIM, SHARED, HIDDEN, BATCH = 16, 64, 16, 512, 8192
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    model = PLE().to(device)
    dense_params = [p for n, p in model.named_parameters() if not n.startswith("emb")]
    opt_dense = torch.optim.Adam(dense_params, lr=1e-3)
    opt_sparse = torch.optim.Adagrad(model.emb.parameters(), lr=0.05, initial_accumulator_value=0.1)
    gen = torch.Generator().manual_seed(1)
    batches = [batch(gen) for _ in range(16)]
    batches = [([t.to(device) for t in ids], [t.to(device) for t in offs], *(t.to(device) for t in rest))
               for ids, offs, *rest in batches]
    forward = torch.compile(model) if args.compile else model

    def step(b):
        ids, offsets, dense, labels, masks, weights = b
        opt_dense.zero_grad()
        opt_sparse.zero_grad()
        loss = masked_loss(forward(ids, offsets, dense), labels, masks, weights)
        loss.backward()
        opt_dense.step()
        opt_sparse.step()
        return loss.item()

    for i in range(3):
        step(batches[i])
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < args.seconds or steps < 5:
        loss = step(batches[steps % len(batches)])
        steps += 1
    elapsed = time.perf_counter() - t0
    name = "learner_%s_torch%s%s" % (args.device, "_compile" if args.compile else "", "_large" if args.large else "")
    print(json.dumps({"bench": name, "metric": "train_samples_per_s",
                      "value": steps * BATCH / elapsed, "unit": "samples/s", "threads": args.threads,
                      "steps": steps, "torch": torch.__version__, "final_loss": loss, "device": args.device,
                      "compile": args.compile, "batch": BATCH}))


if __name__ == "__main__":
    main()
