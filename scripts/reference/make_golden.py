#!/usr/bin/python3
"""Independent PyTorch reference for pkg/model: writes testdata/golden/model/<case>.{json,bin}.

Run with Debian's PyTorch (CPU, torch 1.13):

    /usr/bin/python3 scripts/reference/make_golden.py [outdir]

For each tiny configuration (GPT-2; Llama with grouped-query attention and an untied head;
Llama with a tied head and an odd half head size; and GPT-2 and Llama (multi-query) with
sequences up to 37 tokens and head sizes 16) it draws float32 weights, then computes
in float64, one sequence at a time (no packing, so the Go packed batch is checked against
separate sequences):

  logits (N, V), logp (N) = log p(next token) with 0 at each sequence's last position,
  loss = mean of -logp over the positions where mask = 1,
  grad/<name> = d(sum_t dlogp[t] * logp[t]) / d param, for a random dlogp that is also
  non-zero at sequence ends (where logp is the constant 0, so those entries are ignored)
  and zero at a few positions.

The models are written here from the definitions in Hugging Face transformers
(GPT2LMHeadModel: Conv1D weights (in, out), gelu_new; LlamaForCausalLM: Linear weights
(out, in), RMSNorm, rotate_half RoPE, SwiGLU, repeat_kv grouping), not imported from it.

File format: <case>.bin is the concatenation of little-endian tensors; <case>.json holds
"hf_config" (a Hugging Face config.json object) and "tensors": a list of
{"name", "dtype" ("f32" or "i32"), "shape", "offset" (bytes)}. Tensor names:
tokens, starts (nseq+1), mask, dlogp, logits, logp, loss (shape [1]),
param/<HF name>, grad/<HF name>; and mixed/logits, mixed/logp, mixed/grad/<HF name>: the
same with the dense products in mixed precision (see MIXED).
"""
import json
import math
import os
import sys

import torch

torch.set_default_dtype(torch.float64)

SEQ_LENS = [5, 9, 1, 3]  # a length-1 sequence has no target at all


def gpt2_names(cfg):
    C, V, F, L = cfg["n_embd"], cfg["vocab_size"], cfg["n_inner"], cfg["n_layer"]
    t = [("transformer.wte.weight", (V, C)), ("transformer.wpe.weight", (cfg["n_positions"], C))]
    for l in range(L):
        p = "transformer.h.%d." % l
        t += [(p + "ln_1.weight", (C,)), (p + "ln_1.bias", (C,)),
              (p + "attn.c_attn.weight", (C, 3 * C)), (p + "attn.c_attn.bias", (3 * C,)),
              (p + "attn.c_proj.weight", (C, C)), (p + "attn.c_proj.bias", (C,)),
              (p + "ln_2.weight", (C,)), (p + "ln_2.bias", (C,)),
              (p + "mlp.c_fc.weight", (C, F)), (p + "mlp.c_fc.bias", (F,)),
              (p + "mlp.c_proj.weight", (F, C)), (p + "mlp.c_proj.bias", (C,))]
    t += [("transformer.ln_f.weight", (C,)), ("transformer.ln_f.bias", (C,))]
    return t


def llama_names(cfg):
    C, V, F, L = cfg["hidden_size"], cfg["vocab_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    NH, NKV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = C // NH
    t = [("model.embed_tokens.weight", (V, C))]
    for l in range(L):
        p = "model.layers.%d." % l
        t += [(p + "self_attn.q_proj.weight", (NH * hd, C)), (p + "self_attn.k_proj.weight", (NKV * hd, C)),
              (p + "self_attn.v_proj.weight", (NKV * hd, C)), (p + "self_attn.o_proj.weight", (C, NH * hd)),
              (p + "mlp.gate_proj.weight", (F, C)), (p + "mlp.up_proj.weight", (F, C)),
              (p + "mlp.down_proj.weight", (C, F)),
              (p + "input_layernorm.weight", (C,)), (p + "post_attention_layernorm.weight", (C,))]
    t += [("model.norm.weight", (C,))]
    if not cfg["tie_word_embeddings"]:
        t += [("lm_head.weight", (V, C))]
    return t


def draw(names, gen):
    """Float32-representable weights of a size that gives non-trivial attention and logits."""
    params = {}
    for name, shape in names:
        if len(shape) == 1:
            if "norm" in name or "ln_" in name:
                w = 1 + 0.2 * torch.randn(shape, generator=gen)
            else:
                w = 0.2 * torch.randn(shape, generator=gen)
        elif "wte" in name or "embed_tokens" in name or "wpe" in name:
            w = 0.4 * torch.randn(shape, generator=gen)
        else:
            fan_in = shape[1] if "model.layers" in name or name == "lm_head.weight" else shape[0]
            w = 1.3 * torch.randn(shape, generator=gen) / math.sqrt(fan_in)
        params[name] = w.float().double().requires_grad_(True)
    return params


# MIXED switches every dense-layer product (the projections and the lm head, not the
# attention products) to the semantics of Go's Model.SetMixedBF16: both inputs rounded to
# bfloat16 (nearest even), the products summed exactly (here in float64), in the forward
# pass and in both products of the backward pass (dX = bf(dY) bf(W)^T, dW = bf(X)^T bf(dY)).
MIXED = False


def bf(t):
    return t.to(torch.float32).to(torch.bfloat16).to(torch.float64)


class MixedProduct(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(x, w)
        return bf(x) @ bf(w)

    @staticmethod
    def backward(ctx, dy):
        x, w = ctx.saved_tensors
        return bf(dy) @ bf(w).t(), bf(x).t() @ bf(dy)


def dense(x, w):
    """x (T, IC) @ w (IC, OC): a dense layer's product, in mixed precision when MIXED."""
    return MixedProduct.apply(x, w) if MIXED else x @ w


def layer_norm(x, w, b, eps):
    m = x.mean(-1, keepdim=True)
    v = ((x - m) ** 2).mean(-1, keepdim=True)
    return (x - m) / torch.sqrt(v + eps) * w + b


def rms_norm(x, w, eps):
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * w


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def causal_attention(q, k, v):
    """q (NH, T, hd), k, v (NH, T, hd) -> (T, NH*hd)."""
    NH, T, hd = q.shape
    s = q @ k.transpose(1, 2) / math.sqrt(hd)
    mask = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
    s = s.masked_fill(mask, float("-inf"))
    y = torch.softmax(s, -1) @ v
    return y.transpose(0, 1).reshape(T, NH * hd)


def gpt2_logits(cfg, P, toks):
    T = len(toks)
    C, NH = cfg["n_embd"], cfg["n_head"]
    hd, eps = C // NH, cfg["layer_norm_epsilon"]
    x = P["transformer.wte.weight"][toks] + P["transformer.wpe.weight"][:T]
    for l in range(cfg["n_layer"]):
        p = "transformer.h.%d." % l
        a = layer_norm(x, P[p + "ln_1.weight"], P[p + "ln_1.bias"], eps)
        qkv = dense(a, P[p + "attn.c_attn.weight"]) + P[p + "attn.c_attn.bias"]
        q, k, v = qkv.split(C, -1)
        heads = lambda z: z.reshape(T, NH, hd).transpose(0, 1)
        y = causal_attention(heads(q), heads(k), heads(v))
        x = x + dense(y, P[p + "attn.c_proj.weight"]) + P[p + "attn.c_proj.bias"]
        m = layer_norm(x, P[p + "ln_2.weight"], P[p + "ln_2.bias"], eps)
        h = gelu_new(dense(m, P[p + "mlp.c_fc.weight"]) + P[p + "mlp.c_fc.bias"])
        x = x + dense(h, P[p + "mlp.c_proj.weight"]) + P[p + "mlp.c_proj.bias"]
    x = layer_norm(x, P["transformer.ln_f.weight"], P["transformer.ln_f.bias"], eps)
    return dense(x, P["transformer.wte.weight"].t())


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), -1)


def llama_logits(cfg, P, toks):
    T = len(toks)
    C, NH, NKV = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd, eps, G = C // NH, cfg["rms_norm_eps"], NH // NKV
    inv_freq = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    freqs = torch.arange(T, dtype=torch.float64)[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), -1)
    cos, sin = emb.cos(), emb.sin()  # (T, hd)
    x = P["model.embed_tokens.weight"][toks]
    for l in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % l
        a = rms_norm(x, P[p + "input_layernorm.weight"], eps)
        q = dense(a, P[p + "self_attn.q_proj.weight"].t()).reshape(T, NH, hd).transpose(0, 1)
        k = dense(a, P[p + "self_attn.k_proj.weight"].t()).reshape(T, NKV, hd).transpose(0, 1)
        v = dense(a, P[p + "self_attn.v_proj.weight"].t()).reshape(T, NKV, hd).transpose(0, 1)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        # repeat_kv: query head h reads kv head h // G.
        k = k[:, None].expand(NKV, G, T, hd).reshape(NH, T, hd)
        v = v[:, None].expand(NKV, G, T, hd).reshape(NH, T, hd)
        y = causal_attention(q, k, v)
        x = x + dense(y, P[p + "self_attn.o_proj.weight"].t())
        m = rms_norm(x, P[p + "post_attention_layernorm.weight"], eps)
        g = dense(m, P[p + "mlp.gate_proj.weight"].t())
        u = dense(m, P[p + "mlp.up_proj.weight"].t())
        x = x + dense(torch.nn.functional.silu(g) * u, P[p + "mlp.down_proj.weight"].t())
    x = rms_norm(x, P["model.norm.weight"], eps)
    head = P["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else P["lm_head.weight"]
    return dense(x, head.t())


class Writer:
    def __init__(self):
        self.blob = bytearray()
        self.index = []

    def add(self, name, t, dtype="f32"):
        t = t.detach()
        if dtype == "f32":
            b = t.to(torch.float32).contiguous().numpy().astype("<f4").tobytes()
        else:
            b = t.to(torch.int32).contiguous().numpy().astype("<i4").tobytes()
        self.index.append({"name": name, "dtype": dtype, "shape": list(t.shape), "offset": len(self.blob)})
        self.blob += b


def make_case(outdir, case, cfg, names, logits_fn, seed, seq_lens=SEQ_LENS):
    gen = torch.Generator().manual_seed(seed)
    V = cfg["vocab_size"]
    P = draw(names, gen)
    seqs = [torch.randint(0, V, (n,), generator=gen) for n in seq_lens]
    starts = [0]
    for s in seqs:
        starts.append(starts[-1] + len(s))
    N = starts[-1]

    def run():
        logits_all, logp_all = [], []
        for s in seqs:
            lg = logits_fn(cfg, P, s)
            lp = torch.log_softmax(lg, -1)
            tgt = torch.zeros(len(s), dtype=torch.float64)
            if len(s) > 1:
                tgt = torch.cat([lp[:-1].gather(1, s[1:, None])[:, 0], torch.zeros(1)])
            logits_all.append(lg)
            logp_all.append(tgt)
        return torch.cat(logits_all), torch.cat(logp_all)

    logits, logp = run()

    ends = torch.zeros(N, dtype=torch.bool)
    ends[torch.tensor(starts[1:]) - 1] = True
    mask = (~ends) & (torch.rand(N, generator=gen) < 0.8)
    loss = -(logp[mask]).sum() / mask.sum()
    dlogp = torch.randn(N, generator=gen).float().double()
    dlogp[torch.rand(N, generator=gen) < 0.2] = 0  # rows without gradient (prompt positions)
    dlogp[ends] = 3.0  # ignored: logp is the constant 0 there
    for p in P.values():
        p.grad = None
    (dlogp * logp).sum().backward()

    w = Writer()
    w.add("tokens", torch.cat(seqs), "i32")
    w.add("starts", torch.tensor(starts), "i32")
    w.add("mask", mask.double())
    w.add("dlogp", dlogp)
    w.add("logits", logits)
    w.add("logp", logp)
    w.add("loss", loss.reshape(1))
    for name, _ in names:
        w.add("param/" + name, P[name])
    for name, _ in names:
        w.add("grad/" + name, P[name].grad)
    # The same pass with the dense products in mixed precision (Model.SetMixedBF16).
    global MIXED
    MIXED = True
    try:
        logits, logp = run()
        for p in P.values():
            p.grad = None
        (dlogp * logp).sum().backward()
    finally:
        MIXED = False
    w.add("mixed/logits", logits)
    w.add("mixed/logp", logp)
    for name, _ in names:
        w.add("mixed/grad/" + name, P[name].grad)
    with open(os.path.join(outdir, case + ".bin"), "wb") as f:
        f.write(w.blob)
    with open(os.path.join(outdir, case + ".json"), "w") as f:
        json.dump({"hf_config": cfg, "seq_lens": seq_lens, "tensors": w.index}, f, indent=1)
        f.write("\n")
    print("%s: N=%d loss=%.6f, %d bytes" % (case, N, loss.item(), len(w.blob)))


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else "testdata/golden/model"
    os.makedirs(outdir, exist_ok=True)
    gpt2 = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": 67, "n_positions": 11,
            "n_embd": 36, "n_layer": 2, "n_head": 4, "n_inner": 97, "activation_function": "gelu_new",
            "layer_norm_epsilon": 1e-5, "bos_token_id": 0, "eos_token_id": 1}
    make_case(outdir, "gpt2", gpt2, gpt2_names(gpt2), gpt2_logits, 1)
    llama = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": 67,
             "max_position_embeddings": 11, "hidden_size": 36, "intermediate_size": 97,
             "num_hidden_layers": 2, "num_attention_heads": 6, "num_key_value_heads": 2,
             "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "tie_word_embeddings": False,
             "hidden_act": "silu", "bos_token_id": 1, "eos_token_id": 2}
    make_case(outdir, "llama", llama, llama_names(llama), llama_logits, 2)
    tied = dict(llama, hidden_size=40, intermediate_size=53, num_attention_heads=4, num_key_value_heads=2,
                rope_theta=500.0, tie_word_embeddings=True, rms_norm_eps=1e-5)
    make_case(outdir, "llama_tied", tied, llama_names(tied), llama_logits, 3)
    # Longer sequences and wider heads, so the attention products span several GEMM tiles.
    long_lens = [37, 20, 1, 14]
    gpt2_long = dict(gpt2, vocab_size=131, n_positions=40, n_embd=48, n_head=3, n_inner=71)
    make_case(outdir, "gpt2_long", gpt2_long, gpt2_names(gpt2_long), gpt2_logits, 4, long_lens)
    llama_long = dict(llama, vocab_size=131, max_position_embeddings=40, hidden_size=64, intermediate_size=45,
                      num_attention_heads=4, num_key_value_heads=1, rope_theta=1000.0)
    make_case(outdir, "llama_long", llama_long, llama_names(llama_long), llama_logits, 5, long_lens)


if __name__ == "__main__":
    main()
