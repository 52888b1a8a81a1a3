package checkpoint

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/cpo-toolchain/cpo/pkg/model"
)

// presets are the named architectures of cpo-init.
var presets = map[string]model.Config{
	// tiny: GPT-2 style, 4 layers, 4 heads, width 256, vocab 8192, context 128 (about 5.3M
	// parameters): for tests and from-scratch experiments.
	"tiny": {Arch: model.ArchGPT2, VocabSize: 8192, MaxSeqLen: 128, NLayer: 4, NHead: 4, NKVHead: 4,
		DModel: 256, DFF: 1024, NormEps: 1e-5, TieEmbeddings: true, BOS: -1, EOS: -1},
	// llama-tiny: the Llama counterpart of tiny, with grouped-query attention (2 kv heads).
	"llama-tiny": {Arch: model.ArchLlama, VocabSize: 8192, MaxSeqLen: 128, NLayer: 4, NHead: 4, NKVHead: 2,
		DModel: 256, DFF: 704, NormEps: 1e-5, RopeTheta: 10000, TieEmbeddings: false, BOS: -1, EOS: -1},
	// gpt2-small: the 124M GPT-2 (openai-community/gpt2) architecture.
	"gpt2-small": {Arch: model.ArchGPT2, VocabSize: 50257, MaxSeqLen: 1024, NLayer: 12, NHead: 12, NKVHead: 12,
		DModel: 768, DFF: 3072, NormEps: 1e-5, TieEmbeddings: true, BOS: 50256, EOS: 50256},
}

// PresetNames lists the presets of Preset, sorted.
func PresetNames() []string {
	var out []string
	for n := range presets {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Preset returns a named architecture: "tiny", "llama-tiny" or "gpt2-small".
func Preset(name string) (model.Config, error) {
	c, ok := presets[name]
	if !ok {
		return model.Config{}, fmt.Errorf("unknown preset %q (have %s)", name, strings.Join(PresetNames(), ", "))
	}
	return c, nil
}

// Sizes overrides parts of a configuration; zero fields (nil pointers) keep the base value.
type Sizes struct {
	Arch      string // "gpt2" or "llama": switches the base to that architecture
	VocabSize int
	MaxSeqLen int
	NLayer    int
	NHead     int
	NKVHead   int // llama only
	DModel    int
	DFF       int
	RopeTheta float64
	NormEps   float64
	Tie       *bool // llama only; GPT-2 is always tied
	BOS, EOS  *int
}

// Apply returns base with the given sizes. Changing the architecture starts from that
// architecture's tiny preset; a new width without a new DFF takes the architecture's default
// (4C for GPT-2; for Llama 8C/3 rounded up to a multiple of 32), and new heads without new kv
// heads give plain multi-head attention. The result is validated.
func (s Sizes) Apply(base model.Config) (model.Config, error) {
	c := base
	switch s.Arch {
	case "", c.Arch:
	case model.ArchGPT2:
		c = presets["tiny"]
	case model.ArchLlama:
		c = presets["llama-tiny"]
	default:
		return model.Config{}, fmt.Errorf("unknown architecture %q (want gpt2 or llama)", s.Arch)
	}
	set := func(dst *int, v int) {
		if v != 0 {
			*dst = v
		}
	}
	set(&c.VocabSize, s.VocabSize)
	set(&c.MaxSeqLen, s.MaxSeqLen)
	set(&c.NLayer, s.NLayer)
	if s.NHead != 0 {
		c.NHead, c.NKVHead = s.NHead, s.NHead
	}
	if s.NKVHead != 0 {
		if c.Arch == model.ArchGPT2 && s.NKVHead != c.NHead {
			return model.Config{}, fmt.Errorf("gpt2 has no grouped-query attention: kv heads must equal heads")
		}
		c.NKVHead = s.NKVHead
	}
	if s.DModel != 0 {
		c.DModel = s.DModel
		if c.Arch == model.ArchGPT2 {
			c.DFF = 4 * c.DModel
		} else {
			c.DFF = (8*c.DModel/3 + 31) / 32 * 32
		}
	}
	set(&c.DFF, s.DFF)
	if s.RopeTheta != 0 {
		if c.Arch != model.ArchLlama {
			return model.Config{}, fmt.Errorf("rope theta applies to llama only")
		}
		c.RopeTheta = s.RopeTheta
	}
	if s.NormEps != 0 {
		c.NormEps = s.NormEps
	}
	if s.Tie != nil {
		if c.Arch == model.ArchGPT2 && !*s.Tie {
			return model.Config{}, fmt.Errorf("gpt2 always ties the lm head to the token embedding")
		}
		c.TieEmbeddings = *s.Tie
	}
	if s.BOS != nil {
		c.BOS = *s.BOS
	}
	if s.EOS != nil {
		c.EOS = *s.EOS
	}
	for _, id := range []struct {
		name string
		v    int
	}{{"bos", c.BOS}, {"eos", c.EOS}} {
		if id.v < -1 || id.v >= c.VocabSize {
			return model.Config{}, fmt.Errorf("%s token id %d outside [0, %d) (or -1 for none)", id.name, id.v, c.VocabSize)
		}
	}
	if err := c.Validate(); err != nil {
		return model.Config{}, err
	}
	return c, nil
}

// NewRandom returns a model of cfg with GPT-2 style initialisation from seed (see
// model.InitGPT2Style): the same configuration and seed give the same parameters.
func NewRandom(cfg model.Config, seed uint64) (*model.Model, error) {
	m, err := model.New(cfg)
	if err != nil {
		return nil, err
	}
	m.InitGPT2Style(seed)
	return m, nil
}

// ParseSize reads a byte size as transformers' max_shard_size does: a number with an optional
// unit KB, MB, GB (powers of 10) or KiB, MiB, GiB (powers of 2); "0" means no limit.
func ParseSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	units := []struct {
		suf string
		mul float64
	}{{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	mul := 1.0
	for _, u := range units {
		if strings.HasSuffix(t, u.suf) {
			t, mul = strings.TrimSpace(strings.TrimSuffix(t, u.suf)), u.mul
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v < 0 || math.IsInf(v*mul, 0) || v*mul > 1<<62 {
		return 0, fmt.Errorf("invalid size %q (examples: 5GB, 500MB, 2GiB, 0 for no limit)", s)
	}
	return int64(v * mul), nil
}
