"""Counting the matrix products a call makes (the tests that pin "only the work asked for")."""

import torch
from torch.utils._python_dispatch import TorchDispatchMode


class _CountMatmuls(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket in (torch.ops.aten.mm, torch.ops.aten.addmm, torch.ops.aten.addmm_):
            self.count += 1
        return func(*args, **(kwargs or {}))


def count_matmuls(fn) -> int:
    """How many ``mm`` / ``addmm`` calls ``fn()`` makes."""
    with _CountMatmuls() as counter:
        fn()
    return counter.count
