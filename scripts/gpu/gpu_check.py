#!/usr/bin/env python3
"""The PyTorch half of `make gpu-check`, run on the GPU machine by run.sh.

  gpu_check.py parity DUMP RESULTS   compare the Go CPU and CUDA outputs that the test binary
                                     dumped (TestDumpForTorch) with a float64 PyTorch model
  gpu_check.py bench RESULTS         time PyTorch eager MLE and CPO training steps of the
                                     same configurations as the Go TestThroughput
  gpu_check.py report RESULTS OUT [STAGES]
                                     write the markdown report OUT (docs/gpu-results.md),
                                     with run.sh's stage exit codes when STAGES is given

RESULTS is a JSON-lines file both sides append to. Relative error of a tensor is
||x - ref||_2 / ||ref||_2 (the Go tests use the same definition). Needs torch only.
"""
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

TOL = {"fp32": 1e-4, "bf16": 1e-2}


def append(path, row):
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")


def peak_bf16(name):
    """Dense bf16 tensor-core peak (FLOP/s) of the card, from its name; None if unknown."""
    n = name.upper()
    if "H100" in n and "PCIE" in n:
        return 756e12
    if "H100" in n or "H200" in n or "GH200" in n or "H800" in n:
        return 989.4e12
    if "A100" in n or "A800" in n:
        return 312e12
    if "L40S" in n:
        return 362e12
    return None


# ---------------------------------------------------------------- the model, in PyTorch


def rope_tables(T, hd, theta, device, dtype):
    inv = theta ** (-torch.arange(0, hd // 2, dtype=torch.float64) * 2 / hd)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
    return ang.cos().to(device, dtype), ang.sin().to(device, dtype)


def rotate(x, cos, sin):
    # x (B, H, T, hd), rotate-half convention of Hugging Face.
    h = x.shape[-1] // 2
    a, b = x[..., :h], x[..., h:]
    return torch.cat([a * cos - b * sin, b * cos + a * sin], dim=-1)


def forward(cfg, P, tokens, sdpa=False):
    """Logits (B, T, V) of tokens (B, T) (one sequence per row, positions from 0).

    P maps Hugging Face tensor names to tensors in the HF layout."""
    B, T = tokens.shape
    C, NH, NKV = cfg["DModel"], cfg["NHead"], cfg["NKVHead"]
    hd = C // NH
    eps = cfg["NormEps"]
    gpt2 = cfg["Arch"] == "gpt2"

    def attend(q, k, v):
        # q (B, NH, T, hd), k, v (B, NKV, T, hd)
        if NKV != NH:
            k = k.repeat_interleave(NH // NKV, dim=1)
            v = v.repeat_interleave(NH // NKV, dim=1)
        if sdpa and hasattr(F, "scaled_dot_product_attention"):  # torch >= 2.0
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)
        s = q @ k.transpose(-1, -2) / math.sqrt(hd)
        mask = torch.ones(T, T, dtype=torch.bool, device=q.device).tril()
        s = s.masked_fill(~mask, float("-inf"))
        return s.softmax(-1) @ v

    if gpt2:
        x = P["transformer.wte.weight"][tokens] + P["transformer.wpe.weight"][:T][None]
        for l in range(cfg["NLayer"]):
            p = f"transformer.h.{l}."
            h = F.layer_norm(x, (C,), P[p + "ln_1.weight"], P[p + "ln_1.bias"], eps)
            qkv = h @ P[p + "attn.c_attn.weight"] + P[p + "attn.c_attn.bias"]
            q, k, v = qkv.split(C, dim=-1)
            q, k, v = (t.view(B, T, NH, hd).transpose(1, 2) for t in (q, k, v))
            a = attend(q, k, v).transpose(1, 2).reshape(B, T, C)
            x = x + a @ P[p + "attn.c_proj.weight"] + P[p + "attn.c_proj.bias"]
            h = F.layer_norm(x, (C,), P[p + "ln_2.weight"], P[p + "ln_2.bias"], eps)
            f = F.gelu(h @ P[p + "mlp.c_fc.weight"] + P[p + "mlp.c_fc.bias"], approximate="tanh")
            x = x + f @ P[p + "mlp.c_proj.weight"] + P[p + "mlp.c_proj.bias"]
        x = F.layer_norm(x, (C,), P["transformer.ln_f.weight"], P["transformer.ln_f.bias"], eps)
        return x @ P["transformer.wte.weight"].t()

    def rms(x, w):
        xf = x.float() if x.dtype != torch.float64 else x
        y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
        return y.to(x.dtype) * w

    cos, sin = rope_tables(T, hd, cfg["RopeTheta"], tokens.device, P["model.norm.weight"].dtype)
    x = P["model.embed_tokens.weight"][tokens]
    for l in range(cfg["NLayer"]):
        p = f"model.layers.{l}."
        h = rms(x, P[p + "input_layernorm.weight"])
        q = (h @ P[p + "self_attn.q_proj.weight"].t()).view(B, T, NH, hd).transpose(1, 2)
        k = (h @ P[p + "self_attn.k_proj.weight"].t()).view(B, T, NKV, hd).transpose(1, 2)
        v = (h @ P[p + "self_attn.v_proj.weight"].t()).view(B, T, NKV, hd).transpose(1, 2)
        q, k = rotate(q, cos.to(q.dtype), sin.to(q.dtype)), rotate(k, cos.to(k.dtype), sin.to(k.dtype))
        a = attend(q, k, v).transpose(1, 2).reshape(B, T, NH * hd)
        x = x + a @ P[p + "self_attn.o_proj.weight"].t()
        h = rms(x, P[p + "post_attention_layernorm.weight"])
        g = F.silu(h @ P[p + "mlp.gate_proj.weight"].t()) * (h @ P[p + "mlp.up_proj.weight"].t())
        x = x + g @ P[p + "mlp.down_proj.weight"].t()
    x = rms(x, P["model.norm.weight"])
    head = P.get("lm_head.weight", P["model.embed_tokens.weight"])
    return x @ head.t()


# ---------------------------------------------------------------- parity


def load_bin(path, dtype):
    """A little-endian float32 or int32 file as a 1-D tensor (no numpy needed)."""
    with open(path, "rb") as f:
        data = bytearray(f.read())
    if not data:
        return torch.zeros(0, dtype=dtype)
    return torch.frombuffer(data, dtype=dtype).clone()


def rel(x, ref):
    x, ref = x.double(), ref.double()
    d = ref.norm().item()
    return (x - ref).norm().item() / (d if d > 0 else 1.0)


def parity(dump, results):
    ok = True
    for name in sorted(os.listdir(dump)):
        d = os.path.join(dump, name)
        cfg = json.load(open(os.path.join(d, "config.json")))
        table = json.load(open(os.path.join(d, "params.json")))
        arena = load_bin(os.path.join(d, "params.bin"), torch.float32).double()
        tokens = load_bin(os.path.join(d, "tokens.bin"), torch.int32).long()
        starts = load_bin(os.path.join(d, "starts.bin"), torch.int32).tolist()
        dlogp = load_bin(os.path.join(d, "dlogp.bin"), torch.float32).double()
        P = {}
        for t in table:
            n = math.prod(t["shape"])
            P[t["name"]] = arena[t["offset"]: t["offset"] + n].view(*t["shape"]).clone().requires_grad_(True)
        N, V = tokens.numel(), cfg["VocabSize"]
        logits = torch.zeros(N, V, dtype=torch.float64)
        logp = torch.zeros(N, dtype=torch.float64)
        parts, lps = [], []
        for i in range(len(starts) - 1):
            s0, s1 = starts[i], starts[i + 1]
            lg = forward(cfg, P, tokens[s0:s1][None])[0]  # (T, V)
            parts.append(lg)
            lp = torch.zeros(s1 - s0, dtype=torch.float64)
            if s1 - s0 > 1:
                ls = lg[:-1].log_softmax(-1).gather(1, tokens[s0 + 1: s1][:, None])[:, 0]
                lp = torch.cat([ls, torch.zeros(1, dtype=torch.float64)])
            lps.append(lp)
        logits = torch.cat(parts)
        logp = torch.cat(lps)
        (dlogp * logp).sum().backward()
        grad = torch.zeros_like(arena)
        for t in table:
            n = math.prod(t["shape"])
            grad[t["offset"]: t["offset"] + n] = P[t["name"]].grad.reshape(-1)
        for run in ("cpu", "gpu-fp32", "gpu-bf16"):
            g_logp = load_bin(os.path.join(d, run + "-logp.bin"), torch.float32)
            g_logits = load_bin(os.path.join(d, run + "-logits.bin"), torch.float32)
            g_grad = load_bin(os.path.join(d, run + "-grad.bin"), torch.float32)
            worst, worst_name = 0.0, ""
            for t in table:
                n = math.prod(t["shape"])
                e = rel(g_grad[t["offset"]: t["offset"] + n], grad[t["offset"]: t["offset"] + n])
                if e > worst:
                    worst, worst_name = e, t["name"]
            row = {"check": "parity-torch", "model": name, "run": run, "logp": rel(g_logp, logp.detach()),
                   "logits": rel(g_logits, logits.detach().reshape(-1)), "grads": rel(g_grad, grad),
                   "worst_tensor": worst_name, "worst": worst,
                   "tol": TOL["bf16"] if run.endswith("bf16") else TOL["fp32"]}
            # fp32: every tensor within tol; bf16: logp, logits and all gradients together
            # (one small tensor alone carries bf16 noise; its error is shown, not judged).
            g_err = row["grads"] if run.endswith("bf16") else row["worst"]
            row["pass"] = max(row["logp"], row["logits"], g_err) < row["tol"]
            ok &= row["pass"]
            print(json.dumps(row))
            append(results, row)
    return ok


# ---------------------------------------------------------------- throughput

BENCH = [  # the same as benchConfigs in pkg/cuda/bench_test.go
    ("gpt2-small", dict(Arch="gpt2", VocabSize=50257, MaxSeqLen=1024, NLayer=12, NHead=12, NKVHead=12, DModel=768,
                        DFF=3072, NormEps=1e-5, TieEmbeddings=True), 8, 1024),
    ("llama-0.75b", dict(Arch="llama", VocabSize=32000, MaxSeqLen=2048, NLayer=12, NHead=16, NKVHead=16, DModel=2048,
                         DFF=5504, NormEps=1e-6, RopeTheta=10000.0, TieEmbeddings=False), 4, 1024),
]


SMOKE = [
    ("gpt2-smoke", dict(Arch="gpt2", VocabSize=97, MaxSeqLen=64, NLayer=2, NHead=2, NKVHead=2, DModel=64, DFF=256,
                        NormEps=1e-5, TieEmbeddings=True), 4, 32),
    ("llama-smoke", dict(Arch="llama", VocabSize=101, MaxSeqLen=64, NLayer=2, NHead=4, NKVHead=2, DModel=64, DFF=96,
                         NormEps=1e-6, RopeTheta=10000.0, TieEmbeddings=False), 4, 32),
]


def make_params(cfg, device):
    C, V, Fd, L = cfg["DModel"], cfg["VocabSize"], cfg["DFF"], cfg["NLayer"]
    hd = C // cfg["NHead"]
    shapes = {}
    if cfg["Arch"] == "gpt2":
        shapes["transformer.wte.weight"] = (V, C)
        shapes["transformer.wpe.weight"] = (cfg["MaxSeqLen"], C)
        for l in range(L):
            p = f"transformer.h.{l}."
            shapes.update({p + "ln_1.weight": (C,), p + "ln_1.bias": (C,), p + "attn.c_attn.weight": (C, 3 * C),
                           p + "attn.c_attn.bias": (3 * C,), p + "attn.c_proj.weight": (C, C), p + "attn.c_proj.bias": (C,),
                           p + "ln_2.weight": (C,), p + "ln_2.bias": (C,), p + "mlp.c_fc.weight": (C, Fd),
                           p + "mlp.c_fc.bias": (Fd,), p + "mlp.c_proj.weight": (Fd, C), p + "mlp.c_proj.bias": (C,)})
        shapes["transformer.ln_f.weight"] = (C,)
        shapes["transformer.ln_f.bias"] = (C,)
    else:
        shapes["model.embed_tokens.weight"] = (V, C)
        for l in range(L):
            p = f"model.layers.{l}."
            shapes.update({p + "self_attn.q_proj.weight": (cfg["NHead"] * hd, C),
                           p + "self_attn.k_proj.weight": (cfg["NKVHead"] * hd, C),
                           p + "self_attn.v_proj.weight": (cfg["NKVHead"] * hd, C),
                           p + "self_attn.o_proj.weight": (C, cfg["NHead"] * hd),
                           p + "mlp.gate_proj.weight": (Fd, C), p + "mlp.up_proj.weight": (Fd, C),
                           p + "mlp.down_proj.weight": (C, Fd), p + "input_layernorm.weight": (C,),
                           p + "post_attention_layernorm.weight": (C,)})
        shapes["model.norm.weight"] = (C,)
        if not cfg["TieEmbeddings"]:
            shapes["lm_head.weight"] = (V, C)
    P = {}
    for k, s in shapes.items():
        if len(s) == 1:
            t = torch.ones(s) if ("ln_" in k or "norm" in k) else torch.zeros(s)
        else:
            t = torch.randn(s) * 0.02
        P[k] = torch.nn.Parameter(t.to(device))
    return P


def bench(results, steps=5, warmup=2):
    configs, dev = BENCH, torch.device("cuda")
    if os.environ.get("CPO_TORCH_SMOKE"):  # a CPU run of the code path with tiny shapes (no GPU needed)
        configs, dev, steps, warmup = SMOKE, torch.device("cpu"), 1, 1
    name = torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu (smoke test)"

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    for mname, cfg, B, T in configs:
        P = make_params(cfg, dev)
        params = sum(p.numel() for p in P.values())
        flops = 6 * params + 6 * cfg["NLayer"] * cfg["DModel"] * T
        tokens = torch.randint(0, cfg["VocabSize"], (B, T), device=dev)
        for obj in ("mle", "cpo"):
            opt = torch.optim.AdamW(list(P.values()), lr=1e-5, weight_decay=0.05)
            ref = None
            if obj == "cpo":
                ref = {k: v.detach().to(torch.bfloat16) for k, v in P.items()}
            total = 0.0
            for s in range(warmup + steps):
                sync()
                t0 = time.perf_counter()
                with torch.autocast(dev.type, dtype=torch.bfloat16):
                    if ref is not None:
                        with torch.no_grad():
                            rl = forward(cfg, ref, tokens, sdpa=True)
                            ref_lp = -F.cross_entropy(rl[:, :-1].float().reshape(-1, cfg["VocabSize"]),
                                                      tokens[:, 1:].reshape(-1), reduction="none").view(B, T - 1).sum(1)
                            del rl
                    lg = forward(cfg, P, tokens, sdpa=True)
                nll = F.cross_entropy(lg[:, :-1].float().reshape(-1, cfg["VocabSize"]), tokens[:, 1:].reshape(-1),
                                      reduction="none").view(B, T - 1)
                if ref is None:
                    loss = nll.mean()
                else:  # a CPO-shaped loss: candidates 0 and 1 of every pair, plus the NLL term
                    s_pol = -nll.sum(1)
                    r = 0.1 * (s_pol - ref_lp)
                    loss = -F.logsigmoid(r[0::2] - r[1::2]).mean() + nll[0::2].mean()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(list(P.values()), 1.0)
                opt.step()
                opt.zero_grad(set_to_none=True)
                sync()
                if s >= warmup:
                    total += time.perf_counter() - t0
                del lg, nll, loss
            step_s = total / steps
            fl = flops + (2 * params + 2 * cfg["NLayer"] * cfg["DModel"] * T if obj == "cpo" else 0)
            row = {"check": "throughput", "impl": "pytorch-eager", "model": mname, "objective": obj, "device": name,
                   "tokens": B * T, "B": B, "T": T, "step_ms": step_s * 1000, "tokens_per_s": B * T / step_s,
                   "flops_per_token": fl, "params": params, "torch": torch.__version__}
            print(json.dumps(row))
            append(results, row)
            del opt, ref
            if dev.type == "cuda":
                torch.cuda.empty_cache()
        del P


# ---------------------------------------------------------------- report


def report(results, out, stages=None):
    rows = [json.loads(l) for l in open(results) if l.strip()] if os.path.exists(results) else []
    card = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "unknown"
    peak = peak_bf16(card)
    drv = ""
    try:
        import subprocess

        drv = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True).stdout.strip()
    except Exception:
        pass
    L = ["# GPU results", "",
         f"Card: **{card}** (driver {drv or '?'}, PyTorch {torch.__version__}, CUDA {torch.version.cuda}); "
         f"bf16 dense peak used for MFU: {peak / 1e12:.0f} TFLOP/s." if peak else f"Card: **{card}**; bf16 peak unknown (no MFU).",
         f"Written by `make gpu-check` (scripts/gpu/run.sh) on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.", "",
         "## Parity", "",
         "Relative error ||x - ref|| / ||ref|| of the per-position log-probabilities, the logits and the parameter",
         "gradients (all of them together; worst single tensor named) on tiny GPT-2 and Llama models",
         f"(targets: fp32 < {TOL['fp32']:g} on every tensor, bf16 < {TOL['bf16']:g} on logp, logits and all gradients together).", "",
         "| model | run | reference | logp | logits | grads | worst tensor | within target |",
         "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["check"] == "parity-cpu":
            run = f"cuda: {r['path']}"
            ok = max(r["logp"], r["logits"], r["grads"] if r["precision"] == "bf16" else r["worst"]) < r["tol"]
            L.append(f"| {r['model']} | {run} | Go CPU (float32) | {r['logp']:.1e} | {r['logits']:.1e} | {r['grads']:.1e} | "
                     f"{r['worst_tensor']} {r['worst']:.1e} | {'yes' if ok else '**no**'} |")
    for r in rows:
        if r["check"] == "parity-torch":
            L.append(f"| {r['model']} | {r['run']} | PyTorch float64 | {r['logp']:.1e} | {r['logits']:.1e} | {r['grads']:.1e} | "
                     f"{r['worst_tensor']} {r['worst']:.1e} | {'yes' if r['pass'] else '**no**'} |")
    for r in rows:
        if r["check"] in ("gemm", "adamw", "attention-timing"):
            L.append("")
            L.append(f"- {r['check']}: " + ", ".join(f"{k} {v}" for k, v in r.items() if k != "check"))
    L += ["", "## Training throughput", "",
          "bf16 activations, float32 master weights and AdamW, gradient clipping; a CPO step also runs the frozen",
          "reference model's forward. MFU = tokens/s x FLOPs per token / bf16 peak, with FLOPs per token =",
          "6 x params + 6 x L x C x T (+ 2 x params + 2 x L x C x T for the reference forward of CPO).", "",
          "| model | objective | implementation | tokens/step | ms/step | tokens/s | MFU | speed vs PyTorch |",
          "|---|---|---|---|---|---|---|---|"]
    tp = [r for r in rows if r["check"] == "throughput"]
    torch_tps = {(r["model"], r["objective"]): r["tokens_per_s"] for r in tp if r["impl"] == "pytorch-eager"}
    for r in sorted(tp, key=lambda r: (r["model"], r["objective"], r["impl"])):
        mfu = f"{100 * r['tokens_per_s'] * r['flops_per_token'] / peak:.1f}%" if peak else "n/a"
        base = torch_tps.get((r["model"], r["objective"]))
        vs = f"{r['tokens_per_s'] / base:.2f}x" if base else "n/a"
        L.append(f"| {r['model']} | {r['objective']} | {r['impl']} | {r['tokens']} | {r['step_ms']:.1f} | "
                 f"{r['tokens_per_s']:.0f} | {mfu} | {vs} |")
    L += ["", "Go side: `cuda.test -test.run TestThroughput` built with `-tags cuda`; PyTorch side: eager mode,",
          "`torch.autocast(bfloat16)`, `scaled_dot_product_attention(is_causal=True)`, torch.optim.AdamW (default",
          "foreach implementation), same configurations and token counts.", ""]
    if stages and os.path.exists(stages):
        L += ["## Stages of this run", "", "| stage | exit status | time |", "|---|---|---|"]
        for line in open(stages):
            f = line.split()
            if len(f) == 3:
                L.append(f"| {f[0]} | {f[1]} | {f[2]} |")
        L.append("")
    with open(out, "w") as f:
        f.write("\n".join(L))
    print("wrote", out)


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    cmd = sys.argv[1]
    if cmd == "parity":
        torch.set_default_dtype(torch.float64)
        sys.exit(0 if parity(sys.argv[2], sys.argv[3]) else 1)
    elif cmd == "bench":
        bench(sys.argv[2])
    elif cmd == "report":
        report(sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None)
    else:
        sys.exit(__doc__)
