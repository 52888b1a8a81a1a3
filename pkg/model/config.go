package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
)

// Config is the architecture, parsed from / written to a Hugging Face config.json.
//
// Sizes use the letters of the shape comments: V vocabulary, C channels (DModel),
// NH query heads, NKV key/value heads, hd = C/NH head size, DFF feed-forward width,
// L layers.
type Config struct {
	Arch          string  // "gpt2" or "llama"
	VocabSize     int     // V
	MaxSeqLen     int     // n_positions / max_position_embeddings: longest sequence accepted
	NLayer        int     // L
	NHead         int     // NH
	NKVHead       int     // llama: num_key_value_heads (GQA); gpt2: = NHead
	DModel        int     // C: n_embd / hidden_size
	DFF           int     // gpt2: n_inner or 4*C; llama: intermediate_size
	NormEps       float64 // layer_norm_epsilon / rms_norm_eps
	RopeTheta     float64 // llama only (default 10000)
	TieEmbeddings bool    // gpt2 always true; llama: tie_word_embeddings
	BOS, EOS      int     // bos_token_id, eos_token_id (-1 if absent)
	// TorchDType is written as "torch_dtype" by HFConfigJSON ("float32" when empty);
	// ParseHFConfig fills it from the file. It does not change the computation,
	// which is always float32.
	TorchDType string
}

// Architectures understood by this package.
const (
	ArchGPT2  = "gpt2"
	ArchLlama = "llama"
)

// HeadDim is hd = C/NH.
func (c Config) HeadDim() int { return c.DModel / c.NHead }

// Validate reports the first inconsistency in c.
func (c Config) Validate() error {
	switch c.Arch {
	case ArchGPT2, ArchLlama:
	default:
		return fmt.Errorf("model config: unsupported architecture %q (want %q or %q)", c.Arch, ArchGPT2, ArchLlama)
	}
	pos := []struct {
		name string
		v    int
	}{{"vocab_size", c.VocabSize}, {"max sequence length", c.MaxSeqLen}, {"layers", c.NLayer},
		{"heads", c.NHead}, {"kv heads", c.NKVHead}, {"model width", c.DModel}, {"feed-forward width", c.DFF}}
	for _, p := range pos {
		if p.v <= 0 {
			return fmt.Errorf("model config: %s = %d, must be positive", p.name, p.v)
		}
	}
	if c.DModel%c.NHead != 0 {
		return fmt.Errorf("model config: width %d is not a multiple of heads %d", c.DModel, c.NHead)
	}
	if c.NHead%c.NKVHead != 0 {
		return fmt.Errorf("model config: heads %d is not a multiple of kv heads %d", c.NHead, c.NKVHead)
	}
	if !(c.NormEps > 0) || math.IsInf(c.NormEps, 0) {
		return fmt.Errorf("model config: norm epsilon %v must be positive", c.NormEps)
	}
	if c.VocabSize > math.MaxInt32 {
		return fmt.Errorf("model config: vocab_size %d does not fit int32 tokens", c.VocabSize)
	}
	switch c.Arch {
	case ArchGPT2:
		if c.NKVHead != c.NHead {
			return fmt.Errorf("model config: gpt2 has no grouped-query attention (heads %d, kv heads %d)", c.NHead, c.NKVHead)
		}
		if !c.TieEmbeddings {
			return errors.New("model config: gpt2 always ties the lm head to the token embedding")
		}
	case ArchLlama:
		if c.HeadDim()%2 != 0 {
			return fmt.Errorf("model config: rotary embeddings need an even head size, got %d", c.HeadDim())
		}
		if !(c.RopeTheta > 0) || math.IsInf(c.RopeTheta, 0) {
			return fmt.Errorf("model config: rope_theta %v must be positive", c.RopeTheta)
		}
	}
	// Sizes that would overflow the arenas on any machine are rejected early.
	if n := c.numParams(); n <= 0 || n > 1<<40 {
		return fmt.Errorf("model config: implausible parameter count %d", n)
	}
	return nil
}

// hfConfig is the union of the Hugging Face GPT2Config and LlamaConfig fields we read.
// Pointers tell absent from zero.
type hfConfig struct {
	ModelType     string   `json:"model_type"`
	Architectures []string `json:"architectures"`
	TorchDType    string   `json:"torch_dtype"`
	VocabSize     *int     `json:"vocab_size"`
	BOS           any      `json:"bos_token_id"`
	EOS           any      `json:"eos_token_id"`
	Tie           *bool    `json:"tie_word_embeddings"`

	// GPT-2
	NPositions  *int     `json:"n_positions"`
	NEmbd       *int     `json:"n_embd"`
	NLayer      *int     `json:"n_layer"`
	NHead       *int     `json:"n_head"`
	NInner      *int     `json:"n_inner"`
	Activation  *string  `json:"activation_function"`
	LNEps       *float64 `json:"layer_norm_epsilon"`
	ScaleByIdx  bool     `json:"scale_attn_by_inverse_layer_idx"`
	ReorderAttn bool     `json:"reorder_and_upcast_attn"`
	ScaleAttn   *bool    `json:"scale_attn_weights"`

	// Llama
	Hidden       *int            `json:"hidden_size"`
	Inter        *int            `json:"intermediate_size"`
	NumLayers    *int            `json:"num_hidden_layers"`
	NumHeads     *int            `json:"num_attention_heads"`
	NumKVHeads   *int            `json:"num_key_value_heads"`
	MaxPos       *int            `json:"max_position_embeddings"`
	RMSEps       *float64        `json:"rms_norm_eps"`
	RopeTheta    *float64        `json:"rope_theta"`
	RopeScaling  json.RawMessage `json:"rope_scaling"`
	HiddenAct    *string         `json:"hidden_act"`
	AttnBias     bool            `json:"attention_bias"`
	MLPBias      bool            `json:"mlp_bias"`
	HeadDimField *int            `json:"head_dim"`
	Pretraining  *int            `json:"pretraining_tp"`
}

// tokenID reads bos_token_id / eos_token_id: a number, null, or a list (first entry).
func tokenID(v any, field string) (int, error) {
	switch x := v.(type) {
	case nil:
		return -1, nil
	case float64:
		if x != math.Trunc(x) || x < 0 || x > math.MaxInt32 {
			return 0, fmt.Errorf("model config: %s = %v is not a token id", field, x)
		}
		return int(x), nil
	case []any:
		if len(x) == 0 {
			return -1, nil
		}
		return tokenID(x[0], field)
	default:
		return 0, fmt.Errorf("model config: %s has type %T, want a number", field, v)
	}
}

func need(p *int, field string) (int, error) {
	if p == nil {
		return 0, fmt.Errorf("model config: missing %q", field)
	}
	return *p, nil
}

// ParseHFConfig reads a Hugging Face config.json of model_type "gpt2" or "llama".
// Missing optional fields take the transformers defaults (n_inner = 4*n_embd,
// num_key_value_heads = num_attention_heads, rope_theta = 10000, eps 1e-5 / 1e-6,
// tie_word_embeddings false for llama). Features this package does not implement
// (rope_scaling, attention or MLP biases in llama, activations other than the tanh GELU
// / SiLU, GPT-2 attention variants) are errors rather than silently wrong results.
func ParseHFConfig(data []byte) (Config, error) {
	var h hfConfig
	if err := json.Unmarshal(data, &h); err != nil {
		return Config{}, fmt.Errorf("model config: %w", err)
	}
	c := Config{Arch: h.ModelType, TorchDType: h.TorchDType}
	var err error
	if c.BOS, err = tokenID(h.BOS, "bos_token_id"); err != nil {
		return Config{}, err
	}
	if c.EOS, err = tokenID(h.EOS, "eos_token_id"); err != nil {
		return Config{}, err
	}
	if c.VocabSize, err = need(h.VocabSize, "vocab_size"); err != nil {
		return Config{}, err
	}
	fields := func(dst []*int, src []*int, names []string) error {
		for i := range dst {
			v, err := need(src[i], names[i])
			if err != nil {
				return err
			}
			*dst[i] = v
		}
		return nil
	}
	switch h.ModelType {
	case ArchGPT2:
		if err := fields([]*int{&c.MaxSeqLen, &c.DModel, &c.NLayer, &c.NHead},
			[]*int{h.NPositions, h.NEmbd, h.NLayer, h.NHead},
			[]string{"n_positions", "n_embd", "n_layer", "n_head"}); err != nil {
			return Config{}, err
		}
		c.NKVHead = c.NHead
		c.DFF = 4 * c.DModel
		if h.NInner != nil {
			c.DFF = *h.NInner
		}
		c.NormEps = 1e-5
		if h.LNEps != nil {
			c.NormEps = *h.LNEps
		}
		if h.Activation != nil {
			switch *h.Activation {
			case "gelu_new", "gelu_pytorch_tanh":
			default:
				return Config{}, fmt.Errorf("model config: gpt2 activation_function %q not supported (want gelu_new)", *h.Activation)
			}
		}
		if h.ScaleByIdx || h.ReorderAttn || (h.ScaleAttn != nil && !*h.ScaleAttn) {
			return Config{}, errors.New("model config: gpt2 attention variants (scale_attn_by_inverse_layer_idx, reorder_and_upcast_attn, scale_attn_weights=false) are not supported")
		}
		if h.Tie != nil && !*h.Tie {
			return Config{}, errors.New("model config: gpt2 with tie_word_embeddings=false is not supported")
		}
		c.TieEmbeddings = true
	case ArchLlama:
		if err := fields([]*int{&c.MaxSeqLen, &c.DModel, &c.NLayer, &c.NHead, &c.DFF},
			[]*int{h.MaxPos, h.Hidden, h.NumLayers, h.NumHeads, h.Inter},
			[]string{"max_position_embeddings", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size"}); err != nil {
			return Config{}, err
		}
		c.NKVHead = c.NHead
		if h.NumKVHeads != nil {
			c.NKVHead = *h.NumKVHeads
		}
		c.NormEps = 1e-6
		if h.RMSEps != nil {
			c.NormEps = *h.RMSEps
		}
		c.RopeTheta = 10000
		if h.RopeTheta != nil {
			c.RopeTheta = *h.RopeTheta
		}
		if len(h.RopeScaling) > 0 && string(h.RopeScaling) != "null" {
			return Config{}, fmt.Errorf("model config: rope_scaling %s is not supported", h.RopeScaling)
		}
		if h.HiddenAct != nil && *h.HiddenAct != "silu" {
			return Config{}, fmt.Errorf("model config: llama hidden_act %q not supported (want silu)", *h.HiddenAct)
		}
		if h.AttnBias || h.MLPBias {
			return Config{}, errors.New("model config: llama with attention_bias or mlp_bias is not supported")
		}
		if h.Pretraining != nil && *h.Pretraining > 1 {
			return Config{}, fmt.Errorf("model config: pretraining_tp = %d not supported", *h.Pretraining)
		}
		if h.HeadDimField != nil && c.NHead > 0 && *h.HeadDimField != c.DModel/c.NHead {
			return Config{}, fmt.Errorf("model config: head_dim %d differs from hidden_size/num_attention_heads = %d", *h.HeadDimField, c.DModel/c.NHead)
		}
		c.TieEmbeddings = h.Tie != nil && *h.Tie
	default:
		return Config{}, fmt.Errorf("model config: model_type %q not supported (want %q or %q)", h.ModelType, ArchGPT2, ArchLlama)
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// HFConfigJSON writes c as a config.json that transformers loads
// (GPT2LMHeadModel or LlamaForCausalLM), indented, ending in a newline.
func (c Config) HFConfigJSON() ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	dtype := c.TorchDType
	if dtype == "" {
		dtype = "float32"
	}
	tok := func(id int) any {
		if id < 0 {
			return nil
		}
		return id
	}
	var m map[string]any
	switch c.Arch {
	case ArchGPT2:
		m = map[string]any{
			"architectures":                   []string{"GPT2LMHeadModel"},
			"model_type":                      "gpt2",
			"vocab_size":                      c.VocabSize,
			"n_positions":                     c.MaxSeqLen,
			"n_ctx":                           c.MaxSeqLen,
			"n_embd":                          c.DModel,
			"n_layer":                         c.NLayer,
			"n_head":                          c.NHead,
			"n_inner":                         c.DFF,
			"activation_function":             "gelu_new",
			"layer_norm_epsilon":              c.NormEps,
			"resid_pdrop":                     0.0,
			"embd_pdrop":                      0.0,
			"attn_pdrop":                      0.0,
			"initializer_range":               0.02,
			"scale_attn_weights":              true,
			"scale_attn_by_inverse_layer_idx": false,
			"reorder_and_upcast_attn":         false,
			"use_cache":                       true,
			"tie_word_embeddings":             true,
			"bos_token_id":                    tok(c.BOS),
			"eos_token_id":                    tok(c.EOS),
			"torch_dtype":                     dtype,
		}
	case ArchLlama:
		m = map[string]any{
			"architectures":           []string{"LlamaForCausalLM"},
			"model_type":              "llama",
			"vocab_size":              c.VocabSize,
			"max_position_embeddings": c.MaxSeqLen,
			"hidden_size":             c.DModel,
			"intermediate_size":       c.DFF,
			"num_hidden_layers":       c.NLayer,
			"num_attention_heads":     c.NHead,
			"num_key_value_heads":     c.NKVHead,
			"head_dim":                c.HeadDim(),
			"hidden_act":              "silu",
			"rms_norm_eps":            c.NormEps,
			"rope_theta":              c.RopeTheta,
			"rope_scaling":            nil,
			"attention_bias":          false,
			"attention_dropout":       0.0,
			"mlp_bias":                false,
			"pretraining_tp":          1,
			"initializer_range":       0.02,
			"use_cache":               true,
			"tie_word_embeddings":     c.TieEmbeddings,
			"bos_token_id":            tok(c.BOS),
			"eos_token_id":            tok(c.EOS),
			"torch_dtype":             dtype,
		}
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
