"""Time one kind of layer inside a small model: the least total over many short profiles.

    python benchmarks/layers.py pointwise 400x7,160x14 --threads 1
    python benchmarks/layers.py grouped 32x56,400x7 --group-width 16

Each shape CxS is C channels on an S x S image. `pointwise` times four 1x1 layers (C -> C,
ReLU) between two depthwise 3x3 layers, so that they run on channel blocks as inside a real
model; `grouped` times three grouped 3x3 layers (groups of --group-width channels), each after
a 1x1 layer. Printed per shape: the kernel, ms per layer (the least of --blocks profiles of
5 calls each, which a noisy machine disturbs least) and GFLOP/s. For an A/B of two commits,
run it from each checkout in turn (PYTHONPATH=<checkout>), a few times each.
"""
import argparse

import numpy as np
import torch

import cnncompile


def pointwise_model(c, group_width):
    def dw():
        return torch.nn.Conv2d(c, c, 3, padding=1, groups=c)
    ones = [torch.nn.Sequential(torch.nn.Conv2d(c, c, 1), torch.nn.ReLU()) for _ in range(4)]
    return torch.nn.Sequential(dw(), *ones, dw()), "nchw16c.pointwise", 2 * c * c


def grouped_model(c, group_width):
    layers = []
    for _ in range(3):
        layers += [torch.nn.Conv2d(c, c, 1), torch.nn.ReLU(),
                   torch.nn.Conv2d(c, c, 3, padding=1, groups=c // group_width), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers), "nchw16c.direct", 2 * c * group_width * 9


MODELS = {"pointwise": pointwise_model, "grouped": grouped_model}


def time_layers(kind, c, size, threads, group_width, blocks):
    torch.manual_seed(0)
    model, kernel, flops_per_pixel = MODELS[kind](c, group_width)
    model.eval()
    shape = (1, c, size, size)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    compiled = cnncompile.compile(model, shape, num_threads=threads)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    err = float(np.abs(compiled(x) - ref).max() / np.abs(ref).max())
    compiled.profile(x, repeat=20)
    totals = []
    for _ in range(blocks):
        rows = compiled.profile(x, repeat=5, warmup=0, layers=True)["layers"]
        mine = [r[2] for r in rows if r[1] == kernel]
        totals.append(sum(mine) / max(1, len(mine)))
    ms = min(totals)
    return kernel if mine else "(not chosen)", ms, flops_per_pixel * size * size / ms / 1e6, err


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=sorted(MODELS))
    parser.add_argument("shapes", help="comma-separated CxS: C channels on S x S pixels")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--group-width", type=int, default=16)
    parser.add_argument("--blocks", type=int, default=60, help="profiles of 5 calls (default 60)")
    args = parser.parse_args(argv)
    print(f"{'shape':>10}  {'kernel':<18} {'ms/layer':>9} {'GFLOP/s':>8}  err/max")
    for item in args.shapes.split(","):
        c, size = (int(v) for v in item.lower().split("x"))
        kernel, ms, gflops, err = time_layers(args.kind, c, size, args.threads,
                                              args.group_width, args.blocks)
        print(f"{item:>10}  {kernel:<18} {ms:9.4f} {gflops:8.1f}  {err:.1e}", flush=True)


if __name__ == "__main__":
    main()
