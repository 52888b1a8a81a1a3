#!/usr/bin/python3
"""Independent PyTorch reference for pkg/loss, pkg/optim and pkg/train: writes testdata/golden/train/.

Run with Debian's PyTorch (CPU, torch 1.13):

    /usr/bin/python3 scripts/reference/train_golden.py [outdir]

Files written:

loss.json   the objectives as functions of sequence log-probabilities, computed in float64 with
            autograd from the paper's equations (not from pkg/loss's closed-form gradients):
            cases of {"objective": cpo|cpo-rank|dpo, "beta", "s", "sref", "ranking", "loss",
            "grad"} where grad = dL/ds.
              cpo      eq. 7: -log softmax_j(beta*(s_j - sref_j)) at j = 0
              cpo-rank eq. 8: -log Plackett-Luce likelihood of the ranking of those rewards
              dpo      eq. 5: -log sigmoid(beta*(s_w - sref_w) - beta*(s_l - sref_l))
adamw.json  torch.optim.AdamW over several steps with a schedule-free lr list, two parameter
            groups (decayed and not), float32 parameters: the initial params, every step's grads
            and lr, and the params after each step.
model.{json,bin}  the full training path on the tiny GPT-2 of scripts/reference/make_golden.py
            (same definitions, imported from it): two prompts with four candidates each,
            sequences prompt+candidate, s_j = sum of log p over the candidate's tokens, sref_j
            from a perturbed copy of the weights (stored, as a precomputed reference would be),
            and for every objective the batch loss and the gradient of every parameter:
              mle      mean of -log p over the ground truths' tokens of the whole batch
              cpo, cpo-rank, dpo (candidates 0 and 1)   mean over the examples
              mle+cpo  mle + alpha * cpo
            Format as make_golden.py: tensors tokens/starts are not stored; instead "examples"
            in the json lists the prompt and candidate ids, "sref" the reference log-probs,
            "objectives" the losses and the bin holds param/<name> and grad/<objective>/<name>.
"""
import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_golden as mg  # noqa: E402

torch.set_default_dtype(torch.float64)


def cpo_loss(s, sref, beta):
    z = beta * (s - sref)
    return -torch.log_softmax(z, 0)[0]


def rank_loss(s, sref, tau, beta):
    z = beta * (s - sref)
    zt = z[torch.tensor(tau)]
    L = 0
    for k in range(len(tau)):
        L = L - (zt[k] - torch.logsumexp(zt[k:], 0))
    return L


def dpo_loss(s, sref, beta):
    z = beta * (s - sref)
    return -torch.nn.functional.logsigmoid(z[0] - z[1])


def loss_cases(gen):
    cases = []

    def add(obj, beta, s, sref, tau=None):
        s = s.clone().requires_grad_(True)
        if obj == "cpo":
            L = cpo_loss(s, sref, beta)
        elif obj == "cpo-rank":
            L = rank_loss(s, sref, tau, beta)
        else:
            L = dpo_loss(s, sref, beta)
        L.backward()
        cases.append({"objective": obj, "beta": beta, "s": s.detach().tolist(), "sref": sref.tolist(),
                      "ranking": tau or [], "loss": L.item(), "grad": s.grad.tolist()})

    for K, beta, scale in [(12, 5.0, 3.0), (4, 0.1, 10.0), (2, 5.0, 1.0), (12, 5.0, 200.0), (3, 1.0, 0.01)]:
        s = -20 + scale * torch.randn(K, generator=gen)
        sref = -20 + scale * torch.randn(K, generator=gen)
        add("cpo", beta, s, sref)
        tau = [0] + (1 + torch.randperm(K - 1, generator=gen)).tolist()
        add("cpo-rank", beta, s, sref, tau)
        tau = torch.randperm(K, generator=gen).tolist()  # a ranking not led by the ground truth
        add("cpo-rank", beta, s, sref, tau)
        if K >= 2:
            add("dpo", beta, s[:2], sref[:2])
    return cases


def adamw_case(gen):
    # Two groups, float32 like the Go optimizer: decayed matrix, undecayed bias.
    w = torch.randn(7, 5, generator=gen).float().requires_grad_(True)
    b = torch.randn(5, generator=gen).float().requires_grad_(True)
    lr0, betas, eps, wd = 1e-2, (0.9, 0.95), 1e-8, 0.05
    opt = torch.optim.AdamW([{"params": [w], "weight_decay": wd}, {"params": [b], "weight_decay": 0.0}],
                            lr=lr0, betas=betas, eps=eps)
    out = {"lr": lr0, "beta1": betas[0], "beta2": betas[1], "eps": eps, "weight_decay": wd,
           "w0": w.detach().flatten().tolist(), "b0": b.detach().flatten().tolist(), "steps": []}
    lrs = [1e-2, 5e-3, 2e-2, 1e-3, 1e-2, 7e-3]
    for lr in lrs:
        gw = torch.randn(7, 5, generator=gen).float() * 0.3
        gb = torch.randn(5, generator=gen).float() * 3
        for g in opt.param_groups:
            g["lr"] = lr
        w.grad, b.grad = gw.clone(), gb.clone()
        opt.step()
        out["steps"].append({"lr": lr, "gw": gw.flatten().tolist(), "gb": gb.flatten().tolist(),
                             "w": w.detach().flatten().tolist(), "b": b.detach().flatten().tolist()})
    return out


def seq_logp(cfg, P, prompt, cont):
    toks = torch.tensor(prompt + cont)
    lp = torch.log_softmax(mg.gpt2_logits(cfg, P, toks), -1)
    n = len(prompt)
    tgt = lp[n - 1:len(toks) - 1].gather(1, toks[n:, None])[:, 0]
    return tgt  # per continuation token


def model_case(outdir, gen):
    cfg = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": 67, "n_positions": 11,
           "n_embd": 36, "n_layer": 2, "n_head": 4, "n_inner": 97, "activation_function": "gelu_new",
           "layer_norm_epsilon": 1e-5, "bos_token_id": 0, "eos_token_id": 1}
    names = mg.gpt2_names(cfg)
    P = mg.draw(names, gen)
    Pref = {k: (v.detach() + 0.05 * torch.randn(v.shape, generator=gen)).float().double() for k, v in P.items()}
    V = cfg["vocab_size"]
    rnd = lambda n: torch.randint(2, V, (n,), generator=gen).tolist()  # noqa: E731
    examples = [
        {"prompt": rnd(3), "candidates": [rnd(5), rnd(4), rnd(2), rnd(6)], "kinds": ["gt", "bn", "tn", "mn"],
         "ranking": [0, 3, 1, 2]},
        {"prompt": rnd(1), "candidates": [rnd(7), rnd(3), rnd(8), rnd(1)], "kinds": ["gt", "an", "mn", "tn"],
         "ranking": [0, 2, 3, 1]},
    ]
    beta, alpha = 0.3, 0.7
    sref = []
    with torch.no_grad():
        for ex in examples:
            sref.append([seq_logp(cfg, Pref, ex["prompt"], c).sum().item() for c in ex["candidates"]])

    def objective(obj):
        for p in P.values():
            p.grad = None
        terms, mle_sum, mle_n = [], 0, 0
        for ex, sr in zip(examples, sref):
            lps = [seq_logp(cfg, P, ex["prompt"], c) for c in ex["candidates"]]
            s = torch.stack([lp.sum() for lp in lps])
            sr = torch.tensor(sr)
            mle_sum = mle_sum - lps[0].sum()
            mle_n += len(lps[0])
            if obj in ("cpo", "mle+cpo"):
                terms.append(cpo_loss(s, sr, beta))
            elif obj == "cpo-rank":
                terms.append(rank_loss(s, sr, ex["ranking"], beta))
            elif obj == "dpo":
                terms.append(dpo_loss(s[:2], sr[:2], beta))
        if obj == "mle":
            L = mle_sum / mle_n
        elif obj == "mle+cpo":
            L = mle_sum / mle_n + alpha * torch.stack(terms).mean()
        else:
            L = torch.stack(terms).mean()
        L.backward()
        return L.item(), {k: v.grad.clone() for k, v in P.items()}

    w = mg.Writer()
    for name, _ in names:
        w.add("param/" + name, P[name])
    losses = {}
    for obj in ["mle", "cpo", "cpo-rank", "dpo", "mle+cpo"]:
        L, grads = objective(obj)
        losses[obj] = L
        for name, _ in names:
            w.add("grad/%s/%s" % (obj, name), grads[name])
    with open(os.path.join(outdir, "model.bin"), "wb") as f:
        f.write(w.blob)
    with open(os.path.join(outdir, "model.json"), "w") as f:
        json.dump({"hf_config": cfg, "beta": beta, "alpha": alpha, "examples": examples, "sref": sref,
                   "objectives": losses, "tensors": w.index}, f, indent=1)
        f.write("\n")
    print("model: losses %s, %d bytes" % (losses, len(w.blob)))


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else "testdata/golden/train"
    os.makedirs(outdir, exist_ok=True)
    gen = torch.Generator().manual_seed(6)
    with open(os.path.join(outdir, "loss.json"), "w") as f:
        json.dump({"cases": loss_cases(gen)}, f, indent=1)
        f.write("\n")
    with open(os.path.join(outdir, "adamw.json"), "w") as f:
        json.dump(adamw_case(gen), f, indent=1)
        f.write("\n")
    model_case(outdir, gen)


if __name__ == "__main__":
    main()
