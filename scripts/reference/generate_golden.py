#!/usr/bin/python3
"""Independent PyTorch reference for pkg/generate: greedy generations of tiny models.

Run with Debian's PyTorch (CPU):

    /usr/bin/python3 scripts/reference/generate_golden.py [outdir]

writes testdata/golden/generate/<case>.{json,bin} for a GPT-2 and a Llama (grouped-query
attention) configuration. The model definitions and the weight draw are those of
scripts/reference/make_golden.py (written from Hugging Face transformers' GPT2LMHeadModel and
LlamaForCausalLM, not imported from it). Decoding is the plainest possible: in float64, for
every step, a full forward pass over prompt + generated tokens, argmax of the last position's
logits (lowest id on ties, like torch.argmax), stop at EOS (kept as the last id) or after
MAX_NEW tokens. EOS is chosen per case (pick_eos) so that some generations end with it and
others run to MAX_NEW; hf_config's eos_token_id is set to it. logp is the sum over the generated ids of log_softmax(logits)[id].

Each step's margin between the best and second-best logit is checked to be well above float32
rounding, so the Go float32 implementation must produce exactly the same ids.

File format (as make_golden.py): <case>.bin is the concatenation of little-endian tensors;
<case>.json holds "hf_config", "max_new_tokens", "eos", "min_margin", the generations
("prompts": list of id lists, "generated": list of id lists, "logp": list of floats) and
"tensors": a list of {"name", "dtype", "shape", "offset"} with the weights as param/<HF name>.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_golden import Writer, draw, gpt2_logits, gpt2_names, llama_logits, llama_names  # noqa: E402

torch.set_default_dtype(torch.float64)

MAX_NEW = 12
PROMPT_LENS = [1, 4, 9, 6, 13, 2]


def greedy(cfg, P, logits_fn, prompt, eos):
    seq = list(prompt)
    out, logp, margin = [], 0.0, float("inf")
    with torch.no_grad():
        for _ in range(MAX_NEW):
            lg = logits_fn(cfg, P, torch.tensor(seq))[-1]
            top = torch.topk(lg, 2).values
            margin = min(margin, (top[0] - top[1]).item())
            tok = int(torch.argmax(lg).item())
            logp += torch.log_softmax(lg, -1)[tok].item()
            out.append(tok)
            seq.append(tok)
            if tok == eos:
                break
    return out, logp, margin


def pick_eos(cfg, P, logits_fn, prompts):
    """The smallest id generated (without any EOS) after the first step by some prompts but not
    by all, so that the golden has generations ending with EOS and others running to MAX_NEW."""
    free = [greedy(cfg, P, logits_fn, p, -1)[0] for p in prompts]
    for tok in range(cfg["vocab_size"]):
        if any(tok in g[1:] for g in free) and not all(tok in g for g in free):
            return tok
    raise SystemExit("no token suits as EOS; change the seed")


def make_case(outdir, case, cfg, names, logits_fn, seed, scale=None):
    gen = torch.Generator().manual_seed(seed)
    V = cfg["vocab_size"]
    P = draw(names, gen)
    with torch.no_grad():
        for name, f in (scale or {}).items():
            P[name].mul_(f)
    prompts = [torch.randint(0, V, (n,), generator=gen).tolist() for n in PROMPT_LENS]
    eos = pick_eos(cfg, P, logits_fn, prompts)
    cfg = dict(cfg, eos_token_id=eos)
    gens, logps, margin = [], [], float("inf")
    for p in prompts:
        g, lp, m = greedy(cfg, P, logits_fn, p, eos)
        gens.append(g)
        logps.append(lp)
        margin = min(margin, m)
    if margin < 1e-3:
        raise SystemExit("%s: an argmax margin of %g is too close to float32 rounding; change the seed" % (case, margin))
    w = Writer()
    for name, _ in names:
        w.add("param/" + name, P[name])
    with open(os.path.join(outdir, case + ".bin"), "wb") as f:
        f.write(w.blob)
    with open(os.path.join(outdir, case + ".json"), "w") as f:
        json.dump({"hf_config": cfg, "max_new_tokens": MAX_NEW, "eos": eos, "min_margin": margin,
                   "prompts": prompts, "generated": gens, "logp": logps, "tensors": w.index}, f, indent=1)
        f.write("\n")
    ends = sum(1 for g in gens if g and g[-1] == eos)
    print("%s: %d prompts, %d end with EOS, min margin %.4f, %d bytes" % (case, len(prompts), ends, margin, len(w.blob)))


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else "testdata/golden/generate"
    os.makedirs(outdir, exist_ok=True)
    gpt2 = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": 23, "n_positions": 32,
            "n_embd": 36, "n_layer": 2, "n_head": 4, "n_inner": 97, "activation_function": "gelu_new",
            "layer_norm_epsilon": 1e-5, "bos_token_id": 0, "eos_token_id": 1}
    # Tiny random GPT-2s tend to repeat one token; larger token and position embeddings give
    # varied greedy continuations.
    make_case(outdir, "gpt2", gpt2, gpt2_names(gpt2), gpt2_logits, 24,
              {"transformer.wte.weight": 3.0, "transformer.wpe.weight": 3.0})
    llama = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": 23,
             "max_position_embeddings": 32, "hidden_size": 36, "intermediate_size": 97,
             "num_hidden_layers": 2, "num_attention_heads": 6, "num_key_value_heads": 2,
             "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "tie_word_embeddings": False,
             "hidden_act": "silu", "bos_token_id": 1, "eos_token_id": 2}
    make_case(outdir, "llama", llama, llama_names(llama), llama_logits, 12)


if __name__ == "__main__":
    main()
