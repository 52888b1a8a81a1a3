#!/usr/bin/python3
"""PyTorch baseline for `cpo-generate bench`: greedy decoding with a KV cache on the CPU.

    /usr/bin/python3 scripts/bench/generate_torch.py [--config gpt2-small] [--batch 1 16]
        [--prompt-len 64] [--new-tokens 64] [--threads N] [--json]

Runs Debian's PyTorch (float32, torch.inference_mode) on a GPT-2 of the chosen preset with random
weights, N(0, 0.02) (the numbers do not depend on the values): gpt2-small is the 124M GPT-2
(V 50257, context 1024, C 768, 12 layers, 12 heads), tiny the project's tiny preset (V 8192,
context 128, C 256, 4 layers, 4 heads). The model is written out (GPT2LMHeadModel's computation:
LayerNorm, fused qkv Conv1D, causal attention, gelu_new MLP, tied head); transformers is not
needed. The KV cache is preallocated (batch, heads, prompt+new, head size) and filled in place,
as fast as a plain PyTorch cache gets. Every step also computes log_softmax and the chosen
token's log-probability, as the Go decoder does for log Q(y|x).

The protocol is that of pkg/generate.Bench: random prompts of --prompt-len tokens, EOS disabled,
a warm-up run, a prefill-only run (the prompt and the first token) and a full run of
--new-tokens; the printed columns match `cpo-generate bench` so the two can be printed side by
side:

    cpo-generate bench --model gpt2-small; /usr/bin/python3 scripts/bench/generate_torch.py
"""
import argparse
import json
import math
import os
import time

import torch
import torch.nn.functional as F

CONFIGS = {
    "gpt2-small": dict(V=50257, T=1024, C=768, L=12, NH=12),
    "tiny": dict(V=8192, T=128, C=256, L=4, NH=4),
}


class GPT2:
    def __init__(self, V, T, C, L, NH, seed=1):
        g = torch.Generator().manual_seed(seed)
        r = lambda *s: torch.randn(*s, generator=g) * 0.02
        self.V, self.T, self.C, self.L, self.NH = V, T, C, L, NH
        self.wte, self.wpe = r(V, C), r(T, C)
        self.layers = []
        for _ in range(L):
            self.layers.append(dict(
                ln1w=torch.ones(C), ln1b=torch.zeros(C),
                attnw=r(C, 3 * C), attnb=torch.zeros(3 * C),
                projw=r(C, C) / math.sqrt(2 * L), projb=torch.zeros(C),
                ln2w=torch.ones(C), ln2b=torch.zeros(C),
                fcw=r(C, 4 * C), fcb=torch.zeros(4 * C),
                fc2w=r(4 * C, C) / math.sqrt(2 * L), fc2b=torch.zeros(C)))
        self.lnfw, self.lnfb = torch.ones(C), torch.zeros(C)

    def new_cache(self, B, maxlen):
        hd = self.C // self.NH
        return [(torch.zeros(B, self.NH, maxlen, hd), torch.zeros(B, self.NH, maxlen, hd)) for _ in range(self.L)]

    def forward(self, idx, cache, past):
        """idx (B, t) new tokens at positions past..past+t-1; returns the last position's logits (B, V)."""
        B, t = idx.shape
        C, NH = self.C, self.NH
        hd = C // NH
        x = self.wte[idx] + self.wpe[past:past + t]
        for l, p in enumerate(self.layers):
            a = F.layer_norm(x, (C,), p["ln1w"], p["ln1b"], 1e-5)
            qkv = torch.addmm(p["attnb"], a.view(-1, C), p["attnw"]).view(B, t, 3, NH, hd)
            q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (B, NH, t, hd)
            kc, vc = cache[l]
            kc[:, :, past:past + t] = k
            vc[:, :, past:past + t] = v
            K, Vv = kc[:, :, :past + t], vc[:, :, :past + t]
            s = (q @ K.transpose(-1, -2)) / math.sqrt(hd)
            if t > 1:
                mask = torch.ones(t, past + t, dtype=torch.bool).triu(past + 1)
                s = s.masked_fill(mask, float("-inf"))
            y = (torch.softmax(s, -1) @ Vv).transpose(1, 2).reshape(B * t, C)
            x = x + torch.addmm(p["projb"], y, p["projw"]).view(B, t, C)
            m = F.layer_norm(x, (C,), p["ln2w"], p["ln2b"], 1e-5)
            h = F.gelu(torch.addmm(p["fcb"], m.view(-1, C), p["fcw"]), approximate="tanh")
            x = x + torch.addmm(p["fc2b"], h, p["fc2w"]).view(B, t, C)
        last = F.layer_norm(x[:, -1], (C,), self.lnfw, self.lnfb, 1e-5)
        return last @ self.wte.t()


def generate(model, prompts, new_tokens):
    B, P = prompts.shape
    cache = model.new_cache(B, P + new_tokens)
    logits = model.forward(prompts, cache, 0)
    out, logp = [], torch.zeros(B, dtype=torch.float64)
    for step in range(new_tokens):
        tok = logits.argmax(-1)
        logp += torch.log_softmax(logits, -1).gather(1, tok[:, None])[:, 0].double()
        out.append(tok)
        if step + 1 < new_tokens:
            logits = model.forward(tok[:, None], cache, P + step)
    return torch.stack(out, 1), logp


def bench(model, B, P, N):
    g = torch.Generator().manual_seed(1)
    prompts = torch.randint(0, model.V, (B, P), generator=g)

    def run(n):
        t0 = time.perf_counter()
        generate(model, prompts, n)
        return time.perf_counter() - t0

    run(min(N, 4))
    prefill = run(1)
    total = run(N)
    decode = total - prefill
    return dict(prefill_ms=prefill * 1e3, decode_ms_per_step=decode * 1e3 / (N - 1),
                decode_ms_per_token=decode * 1e3 / (N - 1) / B,
                decode_tokens_per_s=B * (N - 1) / decode, tokens_per_s=B * N / total)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default="gpt2-small", choices=sorted(CONFIGS))
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 16])
    ap.add_argument("--prompt-len", type=int, default=64)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="torch.set_num_threads (default: all cores)")
    ap.add_argument("--json", action="store_true", help="one JSON object per batch size")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model = GPT2(**CONFIGS[a.config])
    with torch.inference_mode():
        for B in a.batch:
            r = bench(model, B, a.prompt_len, a.new_tokens)
            if a.json:
                print(json.dumps(dict(impl="torch-" + torch.__version__, model=a.config, batch=B, prompt_len=a.prompt_len,
                                      new_tokens=a.new_tokens, threads=torch.get_num_threads(), **r)))
            else:
                print("torch  %-12s batch %3d  prompt %4d  new %4d  threads %2d  prefill %9.2f ms  decode %8.3f ms/step"
                      " %7.3f ms/token  %8.2f tok/s decode  %8.2f tok/s overall" % (
                          a.config, B, a.prompt_len, a.new_tokens, torch.get_num_threads(), r["prefill_ms"],
                          r["decode_ms_per_step"], r["decode_ms_per_token"], r["decode_tokens_per_s"], r["tokens_per_s"]))


if __name__ == "__main__":
    main()
