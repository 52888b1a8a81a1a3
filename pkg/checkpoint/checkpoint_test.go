package checkpoint

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/cpo-toolchain/cpo/pkg/model"
	"github.com/cpo-toolchain/cpo/pkg/safetensors"
)

func gpt2Config() model.Config {
	return model.Config{Arch: model.ArchGPT2, VocabSize: 50, MaxSeqLen: 16, NLayer: 2, NHead: 2, NKVHead: 2,
		DModel: 8, DFF: 32, NormEps: 1e-5, TieEmbeddings: true, BOS: 0, EOS: 49}
}

func llamaConfig(tied bool) model.Config {
	return model.Config{Arch: model.ArchLlama, VocabSize: 37, MaxSeqLen: 12, NLayer: 2, NHead: 4, NKVHead: 2,
		DModel: 16, DFF: 24, NormEps: 1e-6, RopeTheta: 10000, TieEmbeddings: tied, BOS: 1, EOS: 2}
}

// randomModel fills every parameter with distinct values (including ones bf16 rounds).
func randomModel(t *testing.T, cfg model.Config, seed uint64) *model.Model {
	t.Helper()
	m, err := model.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 1))
	for i := range m.ParamArena() {
		m.ParamArena()[i] = float32(r.NormFloat64() * 0.3)
	}
	return m
}

func sameParams(t *testing.T, a, b *model.Model) {
	t.Helper()
	pa, pb := a.Params(), b.Params()
	if len(pa) != len(pb) {
		t.Fatalf("%d params vs %d", len(pa), len(pb))
	}
	for i := range pa {
		if pa[i].Name != pb[i].Name {
			t.Fatalf("param %d: %s vs %s", i, pa[i].Name, pb[i].Name)
		}
		for j := range pa[i].Data {
			if math.Float32bits(pa[i].Data[j]) != math.Float32bits(pb[i].Data[j]) {
				t.Fatalf("%s[%d]: %v vs %v", pa[i].Name, j, pa[i].Data[j], pb[i].Data[j])
			}
		}
	}
}

func TestRoundTripF32BitExact(t *testing.T) {
	for _, cfg := range []model.Config{gpt2Config(), llamaConfig(false), llamaConfig(true)} {
		m := randomModel(t, cfg, 7)
		dir := filepath.Join(t.TempDir(), "ckpt")
		tok := filepath.Join(t.TempDir(), "tokenizer.json")
		os.WriteFile(tok, []byte(`{"version":"1.0"}`), 0o644)
		if err := Save(m, dir, safetensors.F32, tok); err != nil {
			t.Fatal(err)
		}
		m2, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		if m2.Config.Arch != cfg.Arch || m2.Config.NKVHead != cfg.NKVHead || m2.Config.TieEmbeddings != cfg.TieEmbeddings || m2.Config.EOS != cfg.EOS {
			t.Errorf("config %+v", m2.Config)
		}
		sameParams(t, m, m2)
		f1, _ := Fingerprint(m)
		f2, _ := Fingerprint(m2)
		if f1 != f2 || len(f1) != 64 {
			t.Errorf("fingerprints %s %s", f1, f2)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "tokenizer.json")); string(b) != `{"version":"1.0"}` {
			t.Errorf("tokenizer copy %q", b)
		}
		checkHFLayout(t, dir, m, "float32", "F32")
		ents, _ := os.ReadDir(filepath.Dir(dir))
		if len(ents) != 1 {
			t.Errorf("left beside the checkpoint: %v", ents)
		}
	}
}

// checkHFLayout checks what transformers relies on: config keys, tensor names and shapes,
// the "format": "pt" metadata, and no stored tied lm_head.
func checkHFLayout(t *testing.T, dir string, m *model.Model, torchDType string, dt safetensors.DType) {
	t.Helper()
	var cfg map[string]any
	b, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	arch := map[string]string{"gpt2": "GPT2LMHeadModel", "llama": "LlamaForCausalLM"}[m.Config.Arch]
	if cfg["model_type"] != m.Config.Arch || cfg["torch_dtype"] != torchDType {
		t.Errorf("config.json: model_type %v torch_dtype %v", cfg["model_type"], cfg["torch_dtype"])
	}
	if a, _ := cfg["architectures"].([]any); len(a) != 1 || a[0] != arch {
		t.Errorf("architectures %v want [%s]", cfg["architectures"], arch)
	}
	set, err := safetensors.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	if set.Metadata()["format"] != "pt" {
		t.Errorf("metadata %v", set.Metadata())
	}
	var want, got []string
	for _, p := range m.Params() {
		want = append(want, p.Name)
		info, ok := set.Info(p.Name)
		if !ok || info.DType != dt || len(info.Shape) != len(p.Shape) {
			t.Errorf("%s: %+v", p.Name, info)
		}
	}
	got = append(got, set.Names()...)
	sort.Strings(want)
	sort.Strings(got)
	if strings.Join(want, " ") != strings.Join(got, " ") {
		t.Errorf("stored tensors\n%v\nwant\n%v", got, want)
	}
	hasHead := false
	for _, n := range got {
		hasHead = hasHead || n == "lm_head.weight"
	}
	if hasHead == m.Config.TieEmbeddings {
		t.Errorf("lm_head.weight stored = %v with tie = %v", hasHead, m.Config.TieEmbeddings)
	}
}

func TestRoundTripBF16(t *testing.T) {
	m := randomModel(t, llamaConfig(false), 3)
	dir := filepath.Join(t.TempDir(), "bf16")
	if err := Save(m, dir, safetensors.BF16); err != nil {
		t.Fatal(err)
	}
	checkHFLayout(t, dir, m, "bfloat16", "BF16")
	m2, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range m.Params() {
		q := m2.Params()[i]
		for j, v := range p.Data {
			if d := math.Abs(float64(q.Data[j] - v)); d > math.Abs(float64(v))/256 {
				t.Fatalf("%s[%d]: %v vs %v", p.Name, j, q.Data[j], v)
			}
			if q.Data[j] != safetensors.BF16ToFloat32(safetensors.Float32ToBF16(v)) {
				t.Fatalf("%s[%d] not the rounded value", p.Name, j)
			}
		}
	}
	in, err := Describe(dir)
	if err != nil || in.DType() != "BF16" || in.Bytes != int64(2*m.NumParams()) {
		t.Errorf("describe: %+v %v", in, err)
	}
	if m2.Config.TorchDType != "bfloat16" {
		t.Errorf("torch_dtype %q", m2.Config.TorchDType)
	}
	// The storage dtype label does not enter the fingerprint; the values do.
	f1, _ := Fingerprint(m)
	f2, _ := Fingerprint(m2)
	m3, _ := model.New(m2.Config)
	copy(m3.ParamArena(), m2.ParamArena())
	m3.Config.TorchDType = "float32"
	f3, _ := Fingerprint(m3)
	if f1 == f2 || f2 != f3 {
		t.Errorf("fingerprints %s %s %s", f1, f2, f3)
	}
}

func TestShardedRoundTrip(t *testing.T) {
	m := randomModel(t, gpt2Config(), 5)
	dir := filepath.Join(t.TempDir(), "sharded")
	if err := SaveWith(m, dir, Options{MaxShardBytes: 2000}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, safetensors.IndexFileName)); err != nil {
		t.Fatal("no index written")
	}
	in, err := Describe(dir)
	if err != nil || len(in.Files) < 3 {
		t.Fatalf("describe %+v %v", in, err)
	}
	m2, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	sameParams(t, m, m2)
}

// TestHubGPT2Names loads the layout of the hub's gpt2 files: names without "transformer.",
// the attention mask buffers, and a stored tied lm_head.
func TestHubGPT2Names(t *testing.T) {
	m := randomModel(t, gpt2Config(), 9)
	dir := t.TempDir()
	cj, _ := m.Config.HFConfigJSON()
	os.WriteFile(filepath.Join(dir, "config.json"), cj, 0o644)
	var ts []safetensors.Tensor
	T := m.Config.MaxSeqLen
	for _, p := range m.Params() {
		ts = append(ts, safetensors.Tensor{Name: strings.TrimPrefix(p.Name, "transformer."), Shape: p.Shape, Data: p.Data})
	}
	for l := 0; l < m.Config.NLayer; l++ {
		pre := "h." + string(rune('0'+l)) + ".attn."
		ts = append(ts, safetensors.Tensor{Name: pre + "bias", Shape: []int{1, 1, T, T}, Data: make([]float32, T*T)})
		ts = append(ts, safetensors.Tensor{Name: pre + "masked_bias", Shape: []int{}, Data: []float32{-1e4}})
	}
	ts = append(ts, safetensors.Tensor{Name: "lm_head.weight", Shape: m.Param("transformer.wte.weight").Shape, Data: m.Param("transformer.wte.weight").Data})
	if err := safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), ts, safetensors.F32, nil); err != nil {
		t.Fatal(err)
	}
	m2, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	sameParams(t, m, m2)
	in, _ := Describe(dir)
	if in.Tensors != len(m.Params())+1 { // the params and lm_head, not the buffers
		t.Errorf("described %d tensors", in.Tensors)
	}
}

func TestLoadErrors(t *testing.T) {
	m := randomModel(t, llamaConfig(false), 1)
	cj, _ := m.Config.HFConfigJSON()
	base := func() []safetensors.Tensor {
		var ts []safetensors.Tensor
		for _, p := range m.Params() {
			ts = append(ts, safetensors.Tensor{Name: p.Name, Shape: p.Shape, Data: p.Data})
		}
		return ts
	}
	write := func(ts []safetensors.Tensor, raw []byte) string {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "config.json"), cj, 0o644)
		p := filepath.Join(dir, "model.safetensors")
		if raw != nil {
			os.WriteFile(p, raw, 0o644)
		} else if err := safetensors.WriteFile(p, ts, safetensors.F32, nil); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	ts := base()
	missing := append([]safetensors.Tensor(nil), ts[:3]...)
	missing = append(missing, ts[4:]...)
	shape := base()
	shape[0].Shape = []int{shape[0].Shape[1], shape[0].Shape[0]}
	extra := append(base(), safetensors.Tensor{Name: "model.layers.9.mlp.up_proj.weight", Shape: []int{1}, Data: []float32{0}})
	dup := base()
	dup[0].Name = strings.TrimPrefix(dup[0].Name, "model.")
	dup = append(dup, base()[0])
	cases := []struct {
		name string
		dir  string
		want string
	}{
		{"missing", write(missing, nil), "missing tensor " + ts[3].Name},
		{"shape", write(shape, nil), `tensor "model.embed_tokens.weight" has shape [16 37], config.json implies [37 16]`},
		{"extra", write(extra, nil), `"model.layers.9.mlp.up_proj.weight" is not a parameter`},
		{"duplicate", write(dup, nil), "stored twice"},
		{"dtype", write(nil, rawST(`{"model.norm.weight":{"dtype":"I32","shape":[16],"data_offsets":[0,64]}}`, 64)), "dtype I32 cannot be read"},
		{"bad header", write(nil, rawST(`{"model.norm.weight":{"dtype":"F32","shape":[16],"data_offsets":[0,6400]}}`, 64)), "run past the data area"},
		{"no weights", func() string { d := t.TempDir(); os.WriteFile(filepath.Join(d, "config.json"), cj, 0o644); return d }(), "no model.safetensors"},
		{"no config", t.TempDir(), "config.json"},
	}
	for _, c := range cases {
		_, err := Load(c.dir)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
	}
	// A config whose shapes do not match the tensors.
	d := write(base(), nil)
	bad := strings.Replace(string(cj), `"intermediate_size": 24`, `"intermediate_size": 48`, 1)
	os.WriteFile(filepath.Join(d, "config.json"), []byte(bad), 0o644)
	if _, err := Load(d); err == nil || !strings.Contains(err.Error(), "config.json implies") {
		t.Errorf("config mismatch: %v", err)
	}
}

func rawST(hdr string, n int) []byte {
	b := make([]byte, 8, 8+len(hdr)+n)
	b[0] = byte(len(hdr))
	b[1] = byte(len(hdr) >> 8)
	b = append(b, hdr...)
	return append(b, make([]byte, n)...)
}

func TestSaveReplacesSafely(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "ck")
	m1 := randomModel(t, gpt2Config(), 1)
	m2 := randomModel(t, gpt2Config(), 2)
	if err := Save(m1, dir, safetensors.F32); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "stale.txt"), []byte("x"), 0o644)
	if err := Save(m2, dir, safetensors.F32); err != nil {
		t.Fatal(err)
	}
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	sameParams(t, m2, got)
	if _, err := os.Stat(filepath.Join(dir, "stale.txt")); err == nil {
		t.Error("old directory content kept")
	}
	// A failing save leaves the old checkpoint and no temporary directory.
	if err := Save(m1, dir, safetensors.F32, filepath.Join(root, "no-such-tokenizer.json")); err == nil {
		t.Fatal("missing tokenizer accepted")
	}
	got, _ = Load(dir)
	sameParams(t, m2, got)
	if err := Save(m1, dir, safetensors.F16); err == nil {
		t.Error("F16 save accepted")
	}
	ents, _ := os.ReadDir(root)
	if len(ents) != 1 {
		t.Errorf("root holds %v", ents)
	}
	// Not a checkpoint: refused.
	other := filepath.Join(root, "home")
	os.MkdirAll(other, 0o755)
	os.WriteFile(filepath.Join(other, "thesis.tex"), []byte("x"), 0o644)
	if err := Save(m1, other, safetensors.F32); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Errorf("non-checkpoint dir: %v", err)
	}
	if err := Save(m1, dir, safetensors.F32, filepath.Join(dir, "model.safetensors")); err == nil {
		t.Error("tokenizer named model.safetensors accepted")
	}
}

func TestFingerprintSensitivity(t *testing.T) {
	m := randomModel(t, gpt2Config(), 4)
	f1, _ := Fingerprint(m)
	m.ParamArena()[len(m.ParamArena())-1] += 1e-7
	f2, _ := Fingerprint(m)
	cfg := gpt2Config()
	cfg.EOS = 3
	m3, _ := model.New(cfg)
	copy(m3.ParamArena(), m.ParamArena())
	f3, _ := Fingerprint(m3)
	if f1 == f2 || f2 == f3 {
		t.Errorf("fingerprints %s %s %s", f1, f2, f3)
	}
}
