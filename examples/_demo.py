"""What every example does when run as a script: compile, call, check, show."""
import numpy as np

import cnncompile
from cnncompile import reference


def demo(model, input_shape, batch=4):
    compiled = cnncompile.compile(model.eval(), input_shape=input_shape)
    x = np.random.default_rng(0).standard_normal((batch,) + tuple(input_shape[1:]))
    x = x.astype(np.float32)
    y = compiled(x)
    err = np.abs(y - reference.run(compiled.graph, x)).max()
    print(compiled.summary())
    print(f"\noutput {y.shape}, max |compiled - numpy reference| = {err:.3g}")
    timing = compiled.profile(x[:1])
    print(f"latency (batch 1): {timing['median_ms']:.3f} ms")
    print(f"generated C: {compiled.path.parent / 'model.c'}")
    return compiled
