package model

import (
	"strings"
	"testing"
)

// The config.json that Hugging Face ships with "gpt2" (124M).
const gpt2SmallJSON = `{
  "activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"],
  "attn_pdrop": 0.1, "bos_token_id": 50256, "embd_pdrop": 0.1, "eos_token_id": 50256,
  "initializer_range": 0.02, "layer_norm_epsilon": 1e-05, "model_type": "gpt2",
  "n_ctx": 1024, "n_embd": 768, "n_head": 12, "n_layer": 12, "n_positions": 1024,
  "resid_pdrop": 0.1, "summary_activation": null, "vocab_size": 50257
}`

const llamaJSON = `{
  "architectures": ["LlamaForCausalLM"], "bos_token_id": 1, "eos_token_id": [2, 3],
  "hidden_act": "silu", "hidden_size": 3200, "intermediate_size": 8640,
  "max_position_embeddings": 2048, "model_type": "llama", "num_attention_heads": 32,
  "num_hidden_layers": 26, "rms_norm_eps": 1e-06, "tie_word_embeddings": false,
  "torch_dtype": "float16", "vocab_size": 32000
}`

func TestParseGPT2Small(t *testing.T) {
	c, err := ParseHFConfig([]byte(gpt2SmallJSON))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Arch: "gpt2", VocabSize: 50257, MaxSeqLen: 1024, NLayer: 12, NHead: 12, NKVHead: 12,
		DModel: 768, DFF: 3072, NormEps: 1e-5, TieEmbeddings: true, BOS: 50256, EOS: 50256}
	if c != want {
		t.Fatalf("got %+v\nwant %+v", c, want)
	}
	// The published parameter count of GPT-2 small.
	if n := c.numParams(); n != 124439808 {
		t.Fatalf("gpt2 small has %d parameters, want 124439808", n)
	}
}

func TestParseLlamaAndRoundTrip(t *testing.T) {
	c, err := ParseHFConfig([]byte(llamaJSON))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Arch: "llama", VocabSize: 32000, MaxSeqLen: 2048, NLayer: 26, NHead: 32, NKVHead: 32,
		DModel: 3200, DFF: 8640, NormEps: 1e-6, RopeTheta: 10000, BOS: 1, EOS: 2, TorchDType: "float16"}
	if c != want {
		t.Fatalf("got %+v\nwant %+v", c, want)
	}
	for _, cfg := range []Config{c, {Arch: "gpt2", VocabSize: 67, MaxSeqLen: 11, NLayer: 2, NHead: 4, NKVHead: 4,
		DModel: 36, DFF: 97, NormEps: 1e-5, TieEmbeddings: true, BOS: -1, EOS: 3},
		{Arch: "llama", VocabSize: 67, MaxSeqLen: 11, NLayer: 2, NHead: 6, NKVHead: 2, DModel: 36, DFF: 97,
			NormEps: 1e-5, RopeTheta: 5000, TieEmbeddings: true, BOS: 0, EOS: -1}} {
		js, err := cfg.HFConfigJSON()
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseHFConfig(js)
		if err != nil {
			t.Fatalf("%v\n%s", err, js)
		}
		if cfg.TorchDType == "" {
			cfg.TorchDType = "float32"
		}
		if back != cfg {
			t.Fatalf("round trip: got %+v\nwant %+v", back, cfg)
		}
	}
}

func TestParseRejects(t *testing.T) {
	cases := map[string]string{
		`{"model_type":"bert","vocab_size":3}`:                                                                                  "model_type",
		`{"model_type":"gpt2","vocab_size":50,"n_embd":10,"n_layer":1,"n_head":3,"n_positions":8}`:                              "multiple",
		`{"model_type":"gpt2","vocab_size":50,"n_embd":12,"n_layer":1,"n_head":3}`:                                              "n_positions",
		`{"model_type":"gpt2","vocab_size":50,"n_embd":12,"n_layer":1,"n_head":3,"n_positions":8,"activation_function":"relu"}`: "activation",
		`{"model_type":"llama","vocab_size":50,"hidden_size":12,"num_hidden_layers":1,"num_attention_heads":3,"intermediate_size":5,"max_position_embeddings":8,"rope_scaling":{"type":"linear","factor":2}}`: "rope_scaling",
		`{"model_type":"llama","vocab_size":50,"hidden_size":12,"num_hidden_layers":1,"num_attention_heads":4,"num_key_value_heads":3,"intermediate_size":5,"max_position_embeddings":8}`:                     "kv heads",
		`{"model_type":"llama","vocab_size":50,"hidden_size":12,"num_hidden_layers":1,"num_attention_heads":4,"intermediate_size":5,"max_position_embeddings":8}`:                                             "even head size",
		`{"model_type":"gpt2"`: "unexpected",
	}
	for js, frag := range cases {
		_, err := ParseHFConfig([]byte(js))
		if err == nil || !strings.Contains(err.Error(), frag) {
			t.Errorf("%s: got error %v, want one mentioning %q", js, err, frag)
		}
	}
}

func TestParamsTable(t *testing.T) {
	cfg := Config{Arch: "llama", VocabSize: 67, MaxSeqLen: 11, NLayer: 2, NHead: 6, NKVHead: 2, DModel: 36, DFF: 97,
		NormEps: 1e-5, RopeTheta: 10000}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ps := m.Params()
	if ps[0].Name != "model.embed_tokens.weight" || ps[len(ps)-1].Name != "lm_head.weight" {
		t.Fatalf("first/last params %s %s", ps[0].Name, ps[len(ps)-1].Name)
	}
	k := m.Param("model.layers.1.self_attn.k_proj.weight")
	if k == nil || k.Shape[0] != 12 || k.Shape[1] != 36 || !k.Decay {
		t.Fatalf("k_proj %+v", k)
	}
	if p := m.Param("model.layers.0.input_layernorm.weight"); p == nil || p.Decay {
		t.Fatalf("input_layernorm %+v", p)
	}
	// The params tile the arenas exactly, in order.
	off := 0
	for _, p := range ps {
		if &p.Data[0] != &m.ParamArena()[off] || &p.Grad[0] != &m.GradArena()[off] {
			t.Fatalf("%s is not at arena offset %d", p.Name, off)
		}
		off += len(p.Data)
	}
	if off != m.NumParams() {
		t.Fatalf("params cover %d of %d", off, m.NumParams())
	}
	m.InitGPT2Style(1)
	if m.Param("model.norm.weight").Data[5] != 1 {
		t.Fatal("norm weight not 1 after init")
	}
}
