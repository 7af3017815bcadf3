"""The CNNs of torchvision and timm, random weights, through cnncompile.from_torch, against torch.

torchvision's and timm's wheels do not import next to the CPU torch the tests use, so this
runs in a scratch environment made by ../shared/tools/zoo-venv (see its header):

    zoo-venv /tmp/zoo && /tmp/zoo/bin/pip install -e .
    /tmp/zoo/bin/python benchmarks/zoo_check.py [--graph-only] [--only NAME,...] [--out FILE]

Each model compiles at batch 1 (224x224, Inception v3 299x299) and runs at batch 1 and 2 next
to torch; a model passes when max|y - y_torch| <= 1e-4 max|y_torch| for every output. The
table (and a JSON file with each model's error or failure) is what benchmarks/RESULTS.md
records.
"""
import argparse
import json
import time
import warnings

import numpy as np
import timm
import torch
import torchvision

from models import randomise_torch_batch_norm

TV = ["alexnet", "vgg11", "resnet18", "resnet50", "resnext50_32x4d", "wide_resnet50_2",
      "squeezenet1_0", "squeezenet1_1", "densenet121", "googlenet", "inception_v3",
      "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large", "mnasnet0_5", "mnasnet1_0",
      "shufflenet_v2_x0_5", "shufflenet_v2_x1_0", "efficientnet_b0", "efficientnet_v2_s",
      "regnet_x_400mf", "regnet_y_400mf", "convnext_tiny"]
SEG = ["fcn_resnet50", "deeplabv3_resnet50", "deeplabv3_mobilenet_v3_large",
       "lraspp_mobilenet_v3_large"]
TIMM = ["efficientnet_b0", "mobilenetv3_large_100", "mobilenetv4_conv_small", "regnety_002",
        "regnetx_002", "rexnet_100", "ghostnet_100", "mixnet_s", "cspresnet50", "cspdarknet53",
        "hrnet_w18_small", "ese_vovnet19b_dw", "convnext_atto", "repvgg_a0", "mobileone_s0",
        "fbnetc_100", "lcnet_050", "dpn68", "res2net50_26w_4s", "dla34", "selecsls42b",
        "hardcorenas_a", "efficientvit_b0", "efficientvit_m0"]


def build(key):
    family, name = key.split(":")
    kw = {}
    if family == "tv":
        if name in ("googlenet", "inception_v3"):
            kw = dict(aux_logits=False, init_weights=True)
        return getattr(torchvision.models, name)(weights=None, **kw), (299 if name == "inception_v3" else 224)
    if family == "seg":
        return getattr(torchvision.models.segmentation, name)(weights=None, weights_backbone=None, aux_loss=name.startswith(("fcn", "deeplabv3_r"))), 224
    return timm.create_model(name, pretrained=False), 224


def flat(y):
    if isinstance(y, dict):
        return [v for v in y.values()]
    if isinstance(y, (list, tuple)):
        return [a for v in y for a in flat(v)]
    return [y]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--graph-only", action="store_true")
    ap.add_argument("--only")
    ap.add_argument("--out", default="zoo_check.json")
    a = ap.parse_args()
    import cnncompile
    from cnncompile.api import build_graph
    keys = [f"tv:{n}" for n in TV] + [f"seg:{n}" for n in SEG] + [f"timm:{n}" for n in TIMM]
    if a.only:
        keys = [k for k in keys if k.split(":")[1] in a.only.split(",") or k in a.only.split(",")]
    results = {}
    for key in keys:
        t = time.time()
        try:
            torch.manual_seed(0)
            model, size = build(key)
            model.eval(); randomise_torch_batch_norm(model)
            shape = (1, 3, size, size)
            if a.graph_only:
                g = build_graph(model, shape)
                results[key] = dict(ok=True, layers=len(g), s=round(time.time() - t, 1))
            else:
                compiled = cnncompile.from_torch(model, shape)
                errs = []
                for batch in (1, 2):
                    x = np.random.default_rng(batch).standard_normal((batch,) + shape[1:]).astype(np.float32)
                    with torch.inference_mode():
                        ref = [v.numpy() for v in flat(model(torch.from_numpy(x)))]
                    got = flat(compiled(x))
                    for r, g_ in zip(ref, got):
                        errs.append(float(np.abs(g_ - r).max() / max(1e-30, np.abs(r).max())))
                err = max(errs)
                results[key] = dict(ok=err <= 1e-4, err=err, s=round(time.time() - t, 1))
        except Exception as exc:
            msg = str(exc)
            results[key] = dict(ok=False, error=f"{type(exc).__name__}: {msg[:1500]}",
                                s=round(time.time() - t, 1))
        print(key, json.dumps(results[key])[:600], flush=True)
        json.dump(results, open(a.out, "w"), indent=1)
    n = sum(r["ok"] for r in results.values())
    print(f"\n| model | result | max error / max abs(torch) | seconds (export, compile, runs) |")
    print("|---|---|---|---|")
    for key, r in results.items():
        what = "pass" if r["ok"] else ("mismatch" if "err" in r else r["error"].split("\n")[0])
        err = f"{r['err']:.1e}" if "err" in r else ""
        print(f"| {key} | {what[:140]} | {err} | {r['s']} |")
    print(f"\n{n}/{len(results)} pass")


if __name__ == "__main__":
    warnings.simplefilter("ignore")
    main()
