"""Weight initialisation as torch.nn.init does it for Conv2d and Linear.

torch initialises weights with kaiming_uniform_(a=sqrt(5)), which works out to
U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and biases with the same bound
(torch/nn/modules/conv.py, reset_parameters). The generator is numpy's PCG64, seeded by
cnncompile.manual_seed; like torch, an unseeded program starts from a fixed seed, so
weights are reproducible run to run. The numbers differ from torch's own generator: load a
torch state_dict to get identical weights.
"""
import math

import numpy as np

DEFAULT_SEED = 67280421310721  # torch's default CPU generator seed

_rng = np.random.default_rng(DEFAULT_SEED)


def manual_seed(seed):
    """Seed the generator that initialises every new layer's parameters."""
    global _rng
    _rng = np.random.default_rng(int(seed))
    return _rng


def uniform(shape, bound):
    return _rng.uniform(-bound, bound, size=shape).astype(np.float32)


def fan_in_bound(fan_in):
    return 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
