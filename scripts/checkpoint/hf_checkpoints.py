#!/usr/bin/python3
"""Hugging Face checkpoint compatibility, both directions, without transformers (Debian has
no python3-transformers or python3-safetensors; the model definitions are those of
scripts/reference/make_golden.py, written from transformers' GPT2LMHeadModel and
LlamaForCausalLM).

  /usr/bin/python3 scripts/checkpoint/hf_checkpoints.py write [outdir]
      Writes checkpoints laid out the way transformers / the hub leave them, into
      testdata/safetensors/ (default):
        hf_gpt2_f16/       config.json as on the hub (n_inner null, summary_* keys, no
                           torch_dtype), model.safetensors in F16 with the hub's gpt2 names
                           (no "transformer." prefix) and the attn.bias / attn.masked_bias
                           buffers, tokenizer_config.json beside
        hf_llama_bf16/     LlamaForCausalLM with GQA, untied head, torch_dtype bfloat16,
                           sharded: model-0000{1,2}-of-00002.safetensors + index, with the
                           rotary_emb.inv_freq buffers older transformers saved
        hf_gpt2_bin/       the GPT-2 as pytorch_model.bin (torch.save of the state dict, tied
                           lm_head sharing the embedding's storage, attention buffers)
        hf_llama_bin/      the Llama in F16 as two pytorch_model-0000i-of-00002.bin shards with
                           pytorch_model.bin.index.json, one tensor stored non-contiguous
        hf_logprobs.json   for each: token lines and, in float64 from the stored (rounded)
                           weights, log p(token_t | tokens before t) for t >= 1
      pkg/checkpoint's TestHFWrittenCheckpoints loads them and compares.

  /usr/bin/python3 scripts/checkpoint/hf_checkpoints.py check DIR TOKENS LOGPROBS
      Checks a checkpoint this project wrote against what transformers expects: config keys
      (model_type, architectures, torch_dtype), safetensors metadata {"format": "pt"}, exactly
      the state-dict names and shapes of the architecture (tied lm_head absent), stored dtype =
      torch_dtype; then computes log-probabilities of the lines of TOKENS (space-separated ids)
      in float64 and compares them with LOGPROBS (the output of `cpo-model logprobs`).
      Prints the largest absolute difference; exits 1 on any mismatch (> 1e-4).
"""
import collections
import json
import math
import os
import struct
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
import make_golden as mg  # noqa: E402

torch.set_default_dtype(torch.float64)

ST_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64}
TORCH_NAMES = {"float32": "F32", "float16": "F16", "bfloat16": "BF16"}


# ---- an independent safetensors reader and writer (format spec: u64 LE header length,
# ---- JSON header, data area) --------------------------------------------------------

def st_write(path, tensors, dtype, metadata):
    header = {"__metadata__": metadata}
    blobs, off = [], 0
    for name, t in tensors:
        t = t.detach().to(ST_DTYPES[dtype]).contiguous()
        raw = (t.view(torch.int16) if t.dtype in (torch.float16, torch.bfloat16) else t).numpy().tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    return off


def st_read(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        raw = bytearray(data[base + b:base + end])
        dt = ST_DTYPES[e["dtype"]]
        if dt in (torch.float16, torch.bfloat16):
            t = torch.frombuffer(raw, dtype=torch.int16).view(dt) if raw else torch.zeros(0, dtype=dt)
        else:
            t = torch.frombuffer(raw, dtype=dt) if raw else torch.zeros(0, dtype=dt)
        out[name] = (e["dtype"], t.reshape(e["shape"]))
    return meta, out


def read_dir(d):
    idx = os.path.join(d, "model.safetensors.index.json")
    if os.path.exists(idx):
        with open(idx) as f:
            wm = json.load(f)["weight_map"]
        tensors, metas = {}, []
        for shard in sorted(set(wm.values())):
            meta, ts = st_read(os.path.join(d, shard))
            metas.append(meta)
            tensors.update({k: v for k, v in ts.items() if wm.get(k) == shard})
        return metas, tensors
    meta, ts = st_read(os.path.join(d, "model.safetensors"))
    return [meta], ts


def expected_names(cfg):
    return mg.gpt2_names(cfg) if cfg["model_type"] == "gpt2" else mg.llama_names(cfg)


def with_defaults(cfg):
    cfg = dict(cfg)
    if cfg["model_type"] == "gpt2":
        if cfg.get("n_inner") is None:
            cfg["n_inner"] = 4 * cfg["n_embd"]
        cfg.setdefault("layer_norm_epsilon", 1e-5)
    else:
        cfg.setdefault("num_key_value_heads", cfg["num_attention_heads"])
        cfg.setdefault("rope_theta", 10000.0)
        cfg.setdefault("tie_word_embeddings", False)
    return cfg


def logprobs(cfg, P, toks):
    fn = mg.gpt2_logits if cfg["model_type"] == "gpt2" else mg.llama_logits
    with torch.no_grad():
        logits = fn(cfg, P, torch.tensor(toks))
        lp = torch.log_softmax(logits, -1)
    return [lp[t, toks[t + 1]].item() for t in range(len(toks) - 1)]


# ---- write: checkpoints as transformers leaves them --------------------------------------

def write(outdir):
    gen = torch.Generator().manual_seed(20261127)
    lines = [[3, 17, 5, 60, 2, 9], [1], [44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55]]
    gold = {}

    gpt2 = {"activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"], "attn_pdrop": 0.1,
            "bos_token_id": 63, "embd_pdrop": 0.1, "eos_token_id": 63, "initializer_range": 0.02,
            "layer_norm_epsilon": 1e-05, "model_type": "gpt2", "n_ctx": 16, "n_embd": 24, "n_head": 3,
            "n_inner": None, "n_layer": 2, "n_positions": 16, "resid_pdrop": 0.1, "summary_activation": None,
            "summary_first_dropout": 0.1, "summary_proj_to_labels": True, "summary_type": "cls_index",
            "summary_use_proj": True, "task_specific_params": {"text-generation": {"do_sample": True, "max_length": 50}},
            "vocab_size": 64}
    c = with_defaults(gpt2)
    P = {n: t.detach().half().double() for n, t in mg.draw(expected_names(c), gen).items()}  # as stored
    d = os.path.join(outdir, "hf_gpt2_f16")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(gpt2, f, indent=2)
    T = gpt2["n_positions"]
    ts = [(n[len("transformer."):], P[n]) for n, _ in expected_names(c)]
    for l in range(gpt2["n_layer"]):
        ts.append(("h.%d.attn.bias" % l, torch.tril(torch.ones(T, T)).reshape(1, 1, T, T)))
        ts.append(("h.%d.attn.masked_bias" % l, torch.tensor(-1e4)))
    st_write(os.path.join(d, "model.safetensors"), ts, "F16", {"format": "pt"})
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump({"model_max_length": T}, f)
    gold["hf_gpt2_f16"] = {"lines": lines, "logprobs": [logprobs(c, P, l) for l in lines]}

    llama = {"architectures": ["LlamaForCausalLM"], "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu",
             "hidden_size": 32, "initializer_range": 0.02, "intermediate_size": 56, "max_position_embeddings": 16,
             "model_type": "llama", "num_attention_heads": 4, "num_hidden_layers": 2, "num_key_value_heads": 2,
             "pad_token_id": 0, "rms_norm_eps": 1e-06, "rope_theta": 10000.0, "rope_scaling": None,
             "tie_word_embeddings": False, "torch_dtype": "bfloat16", "transformers_version": "4.40.0",
             "use_cache": True, "vocab_size": 64}
    c = with_defaults(llama)
    P = {n: t.detach().bfloat16().double() for n, t in mg.draw(expected_names(c), gen).items()}
    d = os.path.join(outdir, "hf_llama_bf16")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(llama, f, indent=2)
    names = [n for n, _ in expected_names(c)]
    hd = llama["hidden_size"] // llama["num_attention_heads"]
    inv = 1.0 / (10000.0 ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    half = len(names) // 2
    shards = [names[:half], names[half:]]
    wm, total = {}, 0
    for i, group in enumerate(shards):
        fname = "model-%05d-of-%05d.safetensors" % (i + 1, len(shards))
        ts = [(n, P[n]) for n in group]
        if i == 0:
            ts += [("model.layers.%d.self_attn.rotary_emb.inv_freq" % l, inv) for l in range(llama["num_hidden_layers"])]
        total += st_write(os.path.join(d, fname), ts, "BF16", {"format": "pt"})
        for n, _ in ts:
            wm[n] = fname
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": dict(sorted(wm.items()))}, f, indent=2)
    gold["hf_llama_bf16"] = {"lines": lines, "logprobs": [logprobs(c, P, l) for l in lines]}

    # PyTorch weights as save_pretrained wrote them before safetensors: GPT2LMHeadModel's
    # state_dict (an OrderedDict with _metadata) through torch.save, lm_head.weight sharing
    # the embedding's storage, the attention buffers; and a sharded Llama in F16 with one
    # non-contiguous tensor (a transposed view) to exercise strides.
    c = with_defaults(gpt2)
    P = {n: t.detach().float().double() for n, t in mg.draw(expected_names(c), gen).items()}
    d = os.path.join(outdir, "hf_gpt2_bin")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(gpt2, f, indent=2)
    sd = collections.OrderedDict()
    for n, _ in expected_names(c):
        sd[n] = P[n].float()
    for l in range(gpt2["n_layer"]):
        sd["transformer.h.%d.attn.bias" % l] = torch.tril(torch.ones(T, T, dtype=torch.float32)).reshape(1, 1, T, T)
        sd["transformer.h.%d.attn.masked_bias" % l] = torch.tensor(-1e4, dtype=torch.float32)
    sd["lm_head.weight"] = sd["transformer.wte.weight"]
    sd._metadata = collections.OrderedDict([("", {"version": 1})])
    torch.save(sd, os.path.join(d, "pytorch_model.bin"))
    gold["hf_gpt2_bin"] = {"lines": lines, "logprobs": [logprobs(c, P, l) for l in lines]}

    c = with_defaults(llama)
    P = {n: t.detach().half().double() for n, t in mg.draw(expected_names(c), gen).items()}
    d = os.path.join(outdir, "hf_llama_bin")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(dict(llama, torch_dtype="float16"), f, indent=2)
    names = [n for n, _ in expected_names(c)]
    shards = [names[:half], names[half:]]
    wm = {}
    for i, group in enumerate(shards):
        fname = "pytorch_model-%05d-of-%05d.bin" % (i + 1, len(shards))
        sd = collections.OrderedDict()
        for n in group:
            t = P[n].half()
            if n.endswith("layers.0.self_attn.q_proj.weight"):
                t = t.t().contiguous().t()  # same values, column-major strides
                assert not t.is_contiguous()
            sd[n] = t
            wm[n] = fname
        torch.save(sd, os.path.join(d, fname))
    with open(os.path.join(d, "pytorch_model.bin.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": 2 * sum(P[n].numel() for n in names)}, "weight_map": wm}, f, indent=2)
    gold["hf_llama_bin"] = {"lines": lines, "logprobs": [logprobs(c, P, l) for l in lines]}

    with open(os.path.join(outdir, "hf_logprobs.json"), "w") as f:
        json.dump(gold, f, indent=1)
        f.write("\n")


# ---- check: a checkpoint this project wrote ------------------------------------------------

def check(d, tokens_path, logprobs_path):
    problems = []
    with open(os.path.join(d, "config.json")) as f:
        raw = json.load(f)
    arch = {"gpt2": "GPT2LMHeadModel", "llama": "LlamaForCausalLM"}.get(raw.get("model_type"))
    if arch is None or raw.get("architectures") != [arch]:
        problems.append("model_type %r / architectures %r" % (raw.get("model_type"), raw.get("architectures")))
    want_dtype = TORCH_NAMES.get(raw.get("torch_dtype"))
    if want_dtype is None:
        problems.append("torch_dtype %r" % raw.get("torch_dtype"))
    cfg = with_defaults(raw)
    metas, tensors = read_dir(d)
    for m in metas:
        if m.get("format") != "pt":
            problems.append("safetensors metadata %r lacks format=pt (transformers refuses it)" % m)
    expected = dict(expected_names(cfg))
    if set(tensors) != set(expected):
        problems.append("names: missing %s, extra %s" % (sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))))
    P = {}
    for n, (dt, t) in tensors.items():
        if n in expected and tuple(t.shape) != tuple(expected[n]):
            problems.append("%s: shape %s, want %s" % (n, tuple(t.shape), expected[n]))
        if dt != want_dtype:
            problems.append("%s: dtype %s, torch_dtype says %s" % (n, dt, want_dtype))
        P[n] = t.double()
    if problems:
        print("\n".join(problems))
        sys.exit(1)
    with open(tokens_path) as f:
        lines = [[int(x) for x in l.split()] for l in f]
    with open(logprobs_path) as f:
        got = [json.loads(l) for l in f]
    worst = 0.0
    for toks, g in zip(lines, got):
        ref = logprobs(cfg, P, toks) if len(toks) > 1 else []
        if len(ref) != len(g):
            print("line %r: %d values, want %d" % (toks, len(g), len(ref)))
            sys.exit(1)
        for a, b in zip(ref, g):
            worst = max(worst, abs(a - b))
    ok = len(got) == len(lines) and worst <= 1e-4
    print("%s: %s, %d tensors %s, %d lines, max |logprob difference| = %.3g: %s" %
          (d, arch, len(tensors), want_dtype, len(lines), worst, "OK" if ok else "MISMATCH"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "write":
        write(sys.argv[2] if len(sys.argv) > 2 else "testdata/safetensors")
    elif len(sys.argv) == 5 and sys.argv[1] == "check":
        check(*sys.argv[2:])
    else:
        print(__doc__)
        sys.exit(2)
