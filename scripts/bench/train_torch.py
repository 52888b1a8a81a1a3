#!/usr/bin/env python3
"""PyTorch side of the training-step benchmark (make bench): a nanoGPT-style GPT-2 on the CPU,
timing forward + backward + gradient clipping + AdamW on random tokens (the loss on every
position), so `cpo-train bench` can be compared with it in the same run.

  /usr/bin/python3 scripts/bench/train_torch.py --config tiny --batch 8 --seq-len 128
  /usr/bin/python3 scripts/bench/train_torch.py --config gpt2-small --batch 4 --seq-len 64
  /usr/bin/python3 scripts/bench/train_torch.py --config tiny --precision bf16

Configs match cpo-init's presets: tiny = 4 layers, 4 heads, width 256, vocab 8192, context 128;
gpt2-small = 12 layers, 12 heads, width 768, vocab 50257, context 1024. Prints one line of JSON.

--precision fp32 (default): everything in float32.
--precision bf16: forward and loss run under torch.autocast("cpu", dtype=torch.bfloat16); backward
and AdamW run outside it, and the weights, their gradients and the AdamW moments stay float32
(fp32 master weights; no loss scaling, which bf16 does not need). What autocast does (PyTorch
1.13, checked op by op): every matrix product (the Linear layers, the attention scores Q K^T and
the weighting att V, the tied-embedding logits) casts its inputs to bfloat16, accumulates in
float32 and ROUNDS ITS OUTPUT TO BFLOAT16; the ops fed by those outputs (attention scale, mask and
softmax, GELU) therefore run in bfloat16, while the residual adds, LayerNorm, embeddings and
log-softmax + cross entropy run in float32. Backward mirrors this (gradient matmuls and
bias-gradient sums in bfloat16 with bfloat16 outputs; gradients are cast back to float32 before
they reach the weights). So it is close to, but not exactly, "bf16 matmul inputs, fp32 everything
else": PyTorch also rounds matmul outputs and the softmax/GELU activations to bf16.
"""
import argparse, contextlib, json, math, os, statistics, time
import torch
import torch.nn as nn
import torch.nn.functional as F

CONFIGS = {
    "tiny": dict(n_layer=4, n_head=4, n_embd=256, vocab=8192, ctx=128),
    "gpt2-small": dict(n_layer=12, n_head=12, n_embd=768, vocab=50257, ctx=1024),
}


class Block(nn.Module):
    def __init__(self, c, nh):
        super().__init__()
        self.nh = nh
        self.ln_1 = nn.LayerNorm(c)
        self.c_attn = nn.Linear(c, 3 * c)
        self.c_proj = nn.Linear(c, c)
        self.ln_2 = nn.LayerNorm(c)
        self.c_fc = nn.Linear(c, 4 * c)
        self.mlp_proj = nn.Linear(4 * c, c)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        q = q.view(B, T, self.nh, C // self.nh).transpose(1, 2)
        k = k.view(B, T, self.nh, C // self.nh).transpose(1, 2)
        v = v.view(B, T, self.nh, C // self.nh).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True) if hasattr(F, "scaled_dot_product_attention") else None
        if y is None:
            att = (q @ k.transpose(-2, -1)) / math.sqrt(k.size(-1))
            mask = torch.ones(T, T, dtype=torch.bool).tril()
            att = att.masked_fill(~mask, float("-inf")).softmax(-1)
            y = att @ v
        x = x + self.c_proj(y.transpose(1, 2).reshape(B, T, C))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        c = cfg["n_embd"]
        self.wte = nn.Embedding(cfg["vocab"], c)
        self.wpe = nn.Embedding(cfg["ctx"], c)
        self.h = nn.ModuleList([Block(c, cfg["n_head"]) for _ in range(cfg["n_layer"])])
        self.ln_f = nn.LayerNorm(c)

    def forward(self, idx, targets):
        T = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(T))
        for b in self.h:
            x = b(x)
        logits = self.ln_f(x) @ self.wte.weight.t()
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="tiny", choices=CONFIGS)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--clip", type=float, default=1.0,
                    help="clip the gradients' global norm to this before AdamW, as nanoGPT (grad_clip 1.0) and "
                         "cpo-train (--clip 1) do; 0: no clipping")
    ap.add_argument("--precision", default="fp32", choices=("fp32", "bf16"),
                    help="fp32, or bf16 = torch.autocast(cpu, bfloat16) around forward and loss (see module doc)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads or os.cpu_count())
    torch.manual_seed(1)
    cfg = CONFIGS[a.config]
    m = GPT(cfg)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-5, weight_decay=0.05)
    idx = torch.randint(cfg["vocab"], (a.batch, a.seq_len))
    tgt = torch.randint(cfg["vocab"], (a.batch, a.seq_len))

    def autocast():
        if a.precision == "bf16":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    times = []
    for i in range(a.warmup + a.steps):
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with autocast():
            loss = m(idx, tgt)  # scalar, float32 in both modes (cross entropy runs in fp32 under autocast)
        loss.backward()
        if a.clip > 0:
            torch.nn.utils.clip_grad_norm_(m.parameters(), a.clip)
        opt.step()
        if i >= a.warmup:
            times.append(time.perf_counter() - t)
    ms = statistics.median(times) * 1000
    print(json.dumps({"impl": "pytorch " + torch.__version__, "config": a.config, "batch": a.batch, "seq_len": a.seq_len,
                      "precision": a.precision, "clip": a.clip,
                      "threads": torch.get_num_threads(), "ms_median": round(ms, 1), "ms_min": round(min(times) * 1000, 1),
                      "tokens_per_s": round(a.batch * a.seq_len / (ms / 1000), 1)}))


if __name__ == "__main__":
    main()
