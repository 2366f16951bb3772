"""Keep Python's cyclic garbage collector off the objects a process loads once.

A full collection walks every object the collector tracks. Once torch, scipy, pandas and
the compiler stack that ``torch.optim`` imports on making its first optimizer (``torch._dynamo``
with sympy, about 0.9 s) are loaded, that is about 375,000 objects, and a full collection
takes 0.1-0.2 s; building networks, whose many modules live on, triggers them (during a run
of ``benchmarks/candidate_training.py --oracle``, about 19 s of training with both trainers,
full collections took 0.40 s, and 0.003 s once frozen).
:func:`gc.freeze` moves the objects loaded so far into a permanent generation that
collections skip. They are still freed by reference counting when unused; only a reference
cycle among them would outlive its use.
"""

from __future__ import annotations

import functools
import gc

import torch


@functools.cache
def freeze_loaded_objects() -> None:
    """Once per process: load what training loads on first use, then freeze every tracked object."""
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.0)  # the first optimizer imports torch._dynamo
    gc.freeze()
