"""Worker for the 3-process gloo test of crossentropy.torch.parallel (spawned by test_parallel.py)."""

import os

import torch
import torch.distributed as dist

SPLIT = (300, 401, 322)  # V = 1023, uneven


def case(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    n, d, vocab = 13, 8, sum(SPLIT)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    w = torch.randn(vocab, d, generator=g, dtype=torch.float64) * 0.5
    y = torch.randint(0, vocab, (n,), generator=g)
    y[[2, 9]] = -100  # ignored targets
    y[0], y[1], y[3] = 299, 300, 1022  # targets at the shard boundaries
    return x, w, y


def make_infinite(logits: torch.Tensor, y: torch.Tensor) -> None:
    """A padded vocabulary and the limit rule: row 4's slice on rank 1 is all -inf, row 5 is all -inf (uniform),
    row 6 has +inf on its target (on rank 2), row 7 has -inf on a non-target logit of rank 0."""
    logits[4, 300:701] = -float("inf")
    y[4] = 5
    logits[5] = -float("inf")
    logits[6, 800] = float("inf")
    y[6] = 800
    logits[7, 10] = -float("inf")
    y[7] = 11


def run(rank: int, world: int, port: int, out_dir: str, options: dict) -> None:
    from crossentropy.torch import cross_entropy
    from crossentropy.torch.parallel import vocab_parallel_cross_entropy, vocab_parallel_linear_cross_entropy

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    options = dict(options)
    infinite = options.pop("infinite", False)
    impl = options.pop("impl", "auto")  # of the vocab-parallel losses; the single-process reference is "reference"
    try:
        x, w, y = case()
        full = x @ w.T
        if infinite:
            make_infinite(full, y)
        lo = sum(SPLIT[:rank])
        shard = slice(lo, lo + SPLIT[rank])
        g_out = torch.linspace(0.5, 1.5, x.shape[0], dtype=torch.float64)

        def grad_out(loss):
            return g_out if options["reduction"] == "none" else torch.ones((), dtype=torch.float64)

        # single-process reference
        logits_r = full.clone().requires_grad_()
        ref = cross_entropy(logits_r, y, **options, impl="reference")
        ref.backward(grad_out(ref))

        # logits-shard version
        shard_logits = full[:, shard].clone().requires_grad_()
        loss = vocab_parallel_cross_entropy(shard_logits, y, **options, impl=impl)
        loss.backward(grad_out(loss))
        results = {"loss": (loss.detach(), ref.detach()), "logits_grad": (shard_logits.grad, logits_r.grad[:, shard])}
        if not infinite:  # linear version: a matmul gives finite logits
            xr, wr = x.clone().requires_grad_(), w.clone().requires_grad_()
            cross_entropy(xr @ wr.T, y, **options, impl="reference").backward(grad_out(ref))
            xl, wl = x.clone().requires_grad_(), w[shard].clone().requires_grad_()
            loss_l = vocab_parallel_linear_cross_entropy(xl, wl, y, **options, impl=impl)
            loss_l.backward(grad_out(loss_l))
            results.update(linear_loss=(loss_l.detach(), ref.detach()), input_grad=(xl.grad, xr.grad),
                           weight_grad=(wl.grad, wr.grad[shard]))
        torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


MICRO = ((3, 1, 4), (2, 5), (1, 1, 1, 2))  # uneven micro-batches on each of 3 ranks (20 tokens in all)


def accumulation_case(seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    n, d, vocab = sum(map(sum, MICRO)), 6, 9
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    w = torch.randn(vocab, d, generator=g, dtype=torch.float64)
    b = torch.randn(vocab, generator=g, dtype=torch.float64)
    y = torch.randint(0, vocab, (n,), generator=g)
    y[[0, 7, 8, 15]] = -100
    cw = torch.rand(vocab, generator=g, dtype=torch.float64) + 0.1
    return x, w, b, y, cw


def run_accumulation(rank: int, world: int, port: int, out_dir: str, options: dict) -> None:
    """Each rank accumulates gradients over its micro-batches with total_weight(..., group=None) (all-reduced),
    then the gradients are summed over ranks; the single-process full-batch "mean" gradient is the reference."""
    from crossentropy.torch import cross_entropy, linear_cross_entropy, total_weight

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        x, w, b, y, cw = accumulation_case()
        kw = {"weight": cw, **options}
        smoothing = options.get("label_smoothing", 0.0)
        start = sum(map(sum, MICRO[:rank]))
        bounds = []
        for size in MICRO[rank]:
            bounds.append((start, start + size))
            start += size
        total = total_weight([y[lo:hi] for lo, hi in bounds], weight=cw, label_smoothing=smoothing)
        keep = y != -100  # the reference total from the definition: o_i = (1 - e) w_y + e mean(w)
        expected = ((1 - smoothing) * cw[y[keep]] + smoothing * cw.mean()).sum()
        results = {"total_weight": (total, expected)}
        for name, loss_fn in (("linear", lambda xs, ws, bs, ys, t: linear_cross_entropy(
                                  xs, ws, ys, linear_bias=bs, chunk_size=2, total_weight=t, **kw)),
                              ("cross_entropy", lambda xs, ws, bs, ys, t: cross_entropy(
                                  xs @ ws.T + bs, ys, total_weight=t, **kw))):
            wl, bl = w.clone().requires_grad_(), b.clone().requires_grad_()
            for lo, hi in bounds:  # gradient accumulation: one backward per micro-batch
                loss_fn(x[lo:hi], wl, bl, y[lo:hi], total).backward()
            for grad in (wl.grad, bl.grad):  # what DDP does (it then divides by world: scale the loss by world)
                dist.all_reduce(grad, op=dist.ReduceOp.SUM)
            wr, br = w.clone().requires_grad_(), b.clone().requires_grad_()
            loss_fn(x, wr, br, y, None).backward()  # single process, the whole batch, plain "mean"
            results[f"{name}_weight_grad"] = (wl.grad, wr.grad)
            results[f"{name}_bias_grad"] = (bl.grad, br.grad)
        torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()

