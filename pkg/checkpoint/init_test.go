package checkpoint

import (
	"path/filepath"
	"testing"

	"github.com/cpo-toolchain/cpo/pkg/model"
)

func TestPresets(t *testing.T) {
	for _, n := range PresetNames() {
		c, err := Preset(n)
		if err != nil || c.Validate() != nil {
			t.Errorf("%s: %v %v", n, err, c.Validate())
		}
	}
	tiny, _ := Preset("tiny")
	if tiny.Arch != "gpt2" || tiny.NLayer != 4 || tiny.NHead != 4 || tiny.DModel != 256 || tiny.VocabSize != 8192 || tiny.MaxSeqLen != 128 {
		t.Errorf("tiny %+v", tiny)
	}
	small, _ := Preset("gpt2-small")
	m, err := model.New(small)
	if err != nil || m.NumParams() != 124439808 { // GPT-2 small with tied head
		t.Errorf("gpt2-small: %v params, %v", m.NumParams(), err)
	}
	if _, err := Preset("huge"); err == nil {
		t.Error("unknown preset accepted")
	}
}

func TestSizesApply(t *testing.T) {
	tiny, _ := Preset("tiny")
	no := false
	cases := []struct {
		s    Sizes
		ok   bool
		want func(model.Config) bool
	}{
		{Sizes{DModel: 128}, true, func(c model.Config) bool { return c.DModel == 128 && c.DFF == 512 }},
		{Sizes{DModel: 128, DFF: 100}, true, func(c model.Config) bool { return c.DFF == 100 }},
		{Sizes{Arch: "llama", DModel: 96, NHead: 6, NKVHead: 3}, true, func(c model.Config) bool {
			return c.Arch == "llama" && c.DFF == 256 && c.NKVHead == 3 && c.RopeTheta == 10000
		}},
		{Sizes{Arch: "llama", NHead: 8}, true, func(c model.Config) bool { return c.NKVHead == 8 }},
		{Sizes{NKVHead: 2}, false, nil},
		{Sizes{Tie: &no}, false, nil},
		{Sizes{RopeTheta: 5e5}, false, nil},
		{Sizes{Arch: "rwkv"}, false, nil},
		{Sizes{DModel: 100, NHead: 3}, false, nil},
		{Sizes{EOS: new(8192)}, false, nil},
	}
	for i, c := range cases {
		got, err := c.s.Apply(tiny)
		if (err == nil) != c.ok || (c.ok && !c.want(got)) {
			t.Errorf("case %d: %+v, %v", i, got, err)
		}
	}
}

func TestNewRandomDeterministicAndLoadsBack(t *testing.T) {
	cfg, _ := Sizes{NLayer: 1, DModel: 32, VocabSize: 64}.Apply(mustPreset("tiny"))
	a, _ := NewRandom(cfg, 42)
	b, _ := NewRandom(cfg, 42)
	c, _ := NewRandom(cfg, 43)
	fa, _ := Fingerprint(a)
	fb, _ := Fingerprint(b)
	fc, _ := Fingerprint(c)
	if fa != fb || fa == fc {
		t.Errorf("fingerprints %s %s %s", fa, fb, fc)
	}
	dir := filepath.Join(t.TempDir(), "init")
	if err := Save(a, dir, "F32"); err != nil {
		t.Fatal(err)
	}
	l, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fl, _ := Fingerprint(l); fl != fa {
		t.Error("saved random model does not load back bit-exactly")
	}
}

func mustPreset(n string) model.Config {
	c, err := Preset(n)
	if err != nil {
		panic(err)
	}
	return c
}

func TestParseSize(t *testing.T) {
	good := map[string]int64{"5GB": 5e9, "500MB": 5e8, "2GiB": 2 << 30, "0": 0, "1234": 1234, " 1.5 kb": 1500, "10B": 10}
	for in, want := range good {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "GB", "-1MB", "5TB", "x"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) accepted", in)
		}
	}
}
