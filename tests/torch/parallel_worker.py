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


def serve(rank: int, world: int, port: int, out_dir: str, jobs: list) -> None:
    """One gloo group of ``world`` ranks runs every job ``(key, body, options)`` in turn (one process start for
    them all); each body's ``{name: (got, expected)}`` goes to ``{key}-rank{rank}.pt`` in ``out_dir``."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        for key, body, options in jobs:
            results = BODIES[body](rank, world, dict(options))
            torch.save(results, os.path.join(out_dir, f"{key}-rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def run(rank: int, world: int, options: dict) -> dict:
    from crossentropy.torch import cross_entropy
    from crossentropy.torch.parallel import vocab_parallel_cross_entropy, vocab_parallel_linear_cross_entropy

    infinite = options.pop("infinite", False)
    impl = options.pop("impl", "auto")  # of the vocab-parallel losses; the single-process reference is "reference"
    x, w, y = case()
    if options.pop("weighted", False):  # per-token sample weights, one of them 0
        options["sample_weight"] = torch.linspace(0.0, 2.0, x.shape[0], dtype=torch.float64)
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
    # float32 logits: the loss comes back in float32, as cross_entropy's does (a float64 sum once leaked out)
    single = full.float()
    loss32 = vocab_parallel_cross_entropy(single[:, shard].clone(), y, **options, impl=impl)
    results["float32_loss"] = (loss32.detach(), cross_entropy(single, y, **options, impl="reference").detach())
    return results


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


def run_accumulation(rank: int, world: int, options: dict) -> dict:
    """Each rank accumulates gradients over its micro-batches with total_weight(..., group=None) (all-reduced),
    then the gradients are summed over ranks; the single-process full-batch "mean" gradient is the reference."""
    from crossentropy.torch import cross_entropy, linear_cross_entropy, total_weight

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
    return results


HEAD_V, HEAD_D = 11, 5  # an odd vocabulary: uneven shards (6 / 5) on 2 ranks
ROWS = (4, 7)  # each rank's tokens under FSDP2 (uneven)


def head_case():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(sum(ROWS), HEAD_D, generator=g, dtype=torch.float64)
    w = torch.randn(HEAD_V, HEAD_D, generator=g, dtype=torch.float64)
    b = torch.randn(HEAD_V, generator=g, dtype=torch.float64)
    y = torch.randint(0, HEAD_V, (sum(ROWS),), generator=g)
    y[[1, 6]] = -100
    up = torch.randn(2, sum(ROWS), generator=g, dtype=torch.float64)  # upstream gradients of logp and entropy
    return x, w, b, y, up


def _reference_logprobs(x, w, b, y, temperature):
    logq = torch.log_softmax((x @ w.T + b) / temperature, -1)
    keep = y != -100
    logp = torch.where(keep, logq.gather(-1, y.clamp(min=0)[:, None]).squeeze(-1), 0.0)
    return logp, torch.where(keep, -(logq.exp() * logq).sum(-1), 0.0)


def run_dtensor(rank: int, world: int, options: dict) -> dict:
    """FSDP2 (fully_shard on gloo) and a tensor-parallel vocabulary-sharded DTensor head, against one process."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.tensor import Replicate, Shard, distribute_tensor

    from crossentropy.torch import linear_cross_entropy, linear_logprobs, total_weight

    mesh = init_device_mesh("cpu", (world,))
    x, w, b, y, up = head_case()
    temperature = 0.7
    mine = slice(sum(ROWS[:rank]), sum(ROWS[:rank + 1]))
    results = {}

    # single-process references on the whole batch
    xr, wr, br = (t.clone().requires_grad_() for t in (x, w, b))
    mean = torch.nn.functional.cross_entropy(xr @ wr.T + br, y, ignore_index=-100)
    ref_ce = [mean.detach(), *torch.autograd.grad(mean, (xr, wr, br))]
    logp, h = _reference_logprobs(xr, wr, br, y, temperature)
    ref_lp = [logp.detach(), h.detach(), *torch.autograd.grad((logp * up[0]).sum() + (h * up[1]).sum(),
                                                              (xr, wr, br))]

    # FSDP2: each rank has its own tokens; the head is read outside its module's forward
    for name in ("fsdp_ce", "fsdp_logprobs"):
        head = torch.nn.Linear(HEAD_D, HEAD_V).double()
        with torch.no_grad():
            head.weight.copy_(w)
            head.bias.copy_(b)
        fully_shard(head, mesh=mesh)
        xl = x[mine].clone().requires_grad_()
        if name == "fsdp_ce":
            # the global mean: total_weight over the ranks, times world_size as FSDP2 averages gradients
            loss = linear_cross_entropy(xl, head.weight, y[mine], linear_bias=head.bias,
                                        total_weight=total_weight(y[mine])) * world
            loss.backward()
            summed = loss.detach() / world
            dist.all_reduce(summed)
            results[f"{name}_loss"] = (summed, ref_ce[0])
            # the loss times world_size scales the local activations' gradients too; FSDP2's averaging undoes
            # it for every parameter before them
            results[f"{name}_input_grad"] = (xl.grad, ref_ce[1][mine] * world)
            scale = 1.0
        else:
            lp, ent = linear_logprobs(xl, head.weight, y[mine], linear_bias=head.bias, temperature=temperature,
                                      return_entropy=True)
            ((lp * up[0, mine]).sum() + (ent * up[1, mine]).sum()).backward()
            results[f"{name}_values"] = (torch.stack([lp.detach(), ent.detach()]),
                                         torch.stack([ref_lp[0][mine], ref_lp[1][mine]]))
            results[f"{name}_input_grad"] = (xl.grad, ref_lp[2][mine])
            scale = 1.0 / world  # the summed objective's head gradient, averaged over the ranks
        ref = ref_ce if name == "fsdp_ce" else ref_lp[1:]
        results[f"{name}_weight_grad"] = (head.weight.grad.full_tensor(), ref[2] * scale)
        results[f"{name}_bias_grad"] = (head.bias.grad.full_tensor(), ref[3] * scale)

    # tensor parallelism: every rank has every token; the head is sharded along the vocabulary
    for name in ("tp_ce", "tp_logprobs"):
        xd = distribute_tensor(x.clone(), mesh, [Replicate()]).requires_grad_()
        wd = distribute_tensor(w.clone(), mesh, [Shard(0)]).requires_grad_()
        bd = distribute_tensor(b.clone(), mesh, [Shard(0)]).requires_grad_()
        if name == "tp_ce":
            loss = linear_cross_entropy(xd, wd, y, linear_bias=bd)
            loss.backward()
            results[f"{name}_loss"] = (loss.detach(), ref_ce[0])
            ref = ref_ce[1:]
        else:
            lp, ent = linear_logprobs(xd, wd, y, linear_bias=bd, temperature=temperature, return_entropy=True,
                                      chunk_size=3)
            ((lp * up[0]).sum() + (ent * up[1]).sum()).backward()
            results[f"{name}_values"] = (torch.stack([lp.detach(), ent.detach()]), torch.stack(ref_lp[:2]))
            ref = ref_lp[2:]
        results[f"{name}_input_grad"] = (xd.grad.full_tensor(), ref[0])
        results[f"{name}_weight_grad"] = (wd.grad.full_tensor(), ref[1])
        results[f"{name}_bias_grad"] = (bd.grad.full_tensor(), ref[2])
    return results


BODIES = {"run": run, "run_accumulation": run_accumulation, "run_dtensor": run_dtensor}
