package ensemble

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cpo-toolchain/cpo/pkg/checkpoint"
	"github.com/cpo-toolchain/cpo/pkg/model"
	"github.com/cpo-toolchain/cpo/pkg/safetensors"
)

func tinyConfig(arch string) model.Config {
	c := model.Config{Arch: arch, VocabSize: 37, MaxSeqLen: 16, NLayer: 2, NHead: 2, NKVHead: 2, DModel: 8,
		DFF: 12, NormEps: 1e-5, RopeTheta: 10000, TieEmbeddings: arch == model.ArchGPT2, BOS: 0, EOS: 1}
	return c
}

// save writes a random model of cfg into dir/name with a tokenizer.json of the given text.
func save(t *testing.T, dir, name string, cfg model.Config, seed uint64, dt safetensors.DType, tok string) (*model.Model, string) {
	t.Helper()
	m, err := checkpoint.NewRandom(cfg, seed)
	if err != nil {
		t.Fatal(err)
	}
	// Include special values: a negative zero and a large value.
	m.Params()[0].Data[0] = float32(math.Copysign(0, -1))
	m.Params()[0].Data[1] = 3e38
	tf := filepath.Join(dir, name+"-tokenizer.json")
	if err := os.WriteFile(tf, []byte(tok), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, name)
	tmpTok := filepath.Join(dir, "tokenizer.json")
	os.Remove(tmpTok)
	if err := os.Rename(tf, tmpTok); err != nil {
		t.Fatal(err)
	}
	if err := checkpoint.Save(m, out, dt, tmpTok); err != nil {
		t.Fatal(err)
	}
	return m, out
}

func TestInterpolateExact(t *testing.T) {
	for _, arch := range []string{model.ArchGPT2, model.ArchLlama} {
		dir := t.TempDir()
		cfg := tinyConfig(arch)
		ma, da := save(t, dir, "mle", cfg, 1, safetensors.F32, `{"tok":1}`)
		mb, db := save(t, dir, "cpo", cfg, 2, safetensors.F32, `{"tok":1}`)
		alphas := []float64{0, 0.1, 0.5, 1}
		var outs []Output
		for _, a := range alphas {
			outs = append(outs, Output{Alpha: a, Dir: OutputDir(filepath.Join(dir, "ens-{alpha}"), a)})
		}
		calls := 0
		if err := Interpolate(da, db, outs, Options{Progress: func(d, n int64) { calls++ }}); err != nil {
			t.Fatal(err)
		}
		if calls == 0 {
			t.Fatal("no progress reported")
		}
		for _, o := range outs {
			m, err := checkpoint.Load(o.Dir)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(o.Dir, "tokenizer.json")); err != nil {
				t.Fatalf("tokenizer not copied: %v", err)
			}
			pa, pb, pm := ma.ParamArena(), mb.ParamArena(), m.ParamArena()
			for i := range pm {
				var want float32
				switch o.Alpha {
				case 1:
					want = pa[i]
				case 0:
					want = pb[i]
				case 0.5:
					want = float32((float64(pa[i]) + float64(pb[i])) / 2)
				default:
					want = float32(o.Alpha*float64(pa[i]) + (1-o.Alpha)*float64(pb[i]))
				}
				if math.Float32bits(pm[i]) != math.Float32bits(want) {
					t.Fatalf("%s alpha %v element %d: %v (bits %08x), want %v (bits %08x)", arch, o.Alpha, i, pm[i],
						math.Float32bits(pm[i]), want, math.Float32bits(want))
				}
			}
		}
		if !strings.HasSuffix(outs[1].Dir, "ens-0.1") {
			t.Fatalf("pattern expanded to %s", outs[1].Dir)
		}
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if strings.Contains(e.Name(), ".tmp-") || strings.Contains(e.Name(), ".old-") {
				t.Fatalf("left over %s", e.Name())
			}
		}
	}
}

func TestInterpolateBF16AndHubNames(t *testing.T) {
	dir := t.TempDir()
	cfg := tinyConfig(model.ArchGPT2)
	_, da := save(t, dir, "mle", cfg, 1, safetensors.BF16, "x")
	// The CPO side as a hub GPT-2 checkpoint: names without "transformer.", plus mask buffers.
	mb, err := checkpoint.NewRandom(cfg, 2)
	if err != nil {
		t.Fatal(err)
	}
	var ts []safetensors.Tensor
	for _, p := range mb.Params() {
		ts = append(ts, safetensors.Tensor{Name: strings.TrimPrefix(p.Name, "transformer."), Shape: p.Shape, Data: p.Data})
	}
	ts = append(ts, safetensors.Tensor{Name: "h.0.attn.bias", Shape: []int{1, 1, 2, 2}, Data: []float32{1, 0, 1, 1}})
	db := filepath.Join(dir, "hub")
	os.MkdirAll(db, 0o755)
	if _, err := safetensors.WriteDir(db, ts, safetensors.BF16, 0, nil); err != nil {
		t.Fatal(err)
	}
	cj, _ := cfg.HFConfigJSON()
	os.WriteFile(filepath.Join(db, "config.json"), cj, 0o644)

	out := filepath.Join(dir, "one")
	if err := Interpolate(da, db, []Output{{Alpha: 1, Dir: out}}, Options{}); err != nil {
		t.Fatal(err)
	}
	// Both inputs are BF16, so the output is BF16 and a=1 reproduces the MLE bytes.
	fa, err := safetensors.Open(filepath.Join(da, safetensors.SingleFileName))
	if err != nil {
		t.Fatal(err)
	}
	defer fa.Close()
	fo, err := safetensors.Open(filepath.Join(out, safetensors.SingleFileName))
	if err != nil {
		t.Fatal(err)
	}
	defer fo.Close()
	for _, name := range fa.Names() {
		ra, _ := fa.Info(name)
		ro, ok := fo.Info(name)
		if !ok || ro.DType != safetensors.BF16 || ra.DType != safetensors.BF16 {
			t.Fatalf("%s: output %+v, input %+v", name, ro, ra)
		}
		ba, _ := fa.ReadRaw(name)
		bo, err := fo.ReadRaw(name)
		if err != nil || string(ba) != string(bo) {
			t.Fatalf("%s: a=1 output bytes differ from the MLE input (%v)", name, err)
		}
	}
	cj2, _ := os.ReadFile(filepath.Join(out, "config.json"))
	if !strings.Contains(string(cj2), "bfloat16") {
		t.Fatalf("config.json says %s", cj2)
	}
	if _, err := checkpoint.Load(out); err != nil {
		t.Fatal(err)
	}
	// a = 0 reproduces the hub checkpoint's values under the canonical names.
	out0 := filepath.Join(dir, "zero")
	if err := Interpolate(da, db, []Output{{Alpha: 0, Dir: out0}}, Options{DType: safetensors.F32}); err != nil {
		t.Fatal(err)
	}
	m0, err := checkpoint.Load(out0)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range mb.Params() {
		q := m0.Param(p.Name)
		for i := range p.Data {
			if q.Data[i] != safetensors.BF16ToFloat32(safetensors.Float32ToBF16(p.Data[i])) {
				t.Fatalf("%s[%d] = %v, want the bf16 value of %v", p.Name, i, q.Data[i], p.Data[i])
			}
		}
	}
}

func TestInterpolateRefuses(t *testing.T) {
	dir := t.TempDir()
	cfg := tinyConfig(model.ArchLlama)
	_, da := save(t, dir, "a", cfg, 1, safetensors.F32, "tok-a")
	other := cfg
	other.NLayer = 3
	_, dOther := save(t, dir, "b", other, 2, safetensors.F32, "tok-a")
	_, dTok := save(t, dir, "c", cfg, 3, safetensors.F32, "tok-c")

	// Same config, one tensor of another shape.
	dShape := filepath.Join(dir, "shape")
	os.MkdirAll(dShape, 0o755)
	m, _ := checkpoint.NewRandom(cfg, 4)
	var ts []safetensors.Tensor
	for _, p := range m.Params() {
		tt := safetensors.Tensor{Name: p.Name, Shape: p.Shape, Data: p.Data}
		if p.Name == "model.norm.weight" {
			tt.Shape = []int{2, p.Shape[0] / 2}
		}
		ts = append(ts, tt)
	}
	safetensors.WriteDir(dShape, ts, safetensors.F32, 0, nil)
	cj, _ := cfg.HFConfigJSON()
	os.WriteFile(filepath.Join(dShape, "config.json"), cj, 0o644)
	// Same config, a tensor missing.
	dMissing := filepath.Join(dir, "missing")
	os.MkdirAll(dMissing, 0o755)
	safetensors.WriteDir(dMissing, ts[:len(ts)-2], safetensors.F32, 0, nil)
	os.WriteFile(filepath.Join(dMissing, "config.json"), cj, 0o644)
	// A non-empty directory that is not a checkpoint.
	junk := filepath.Join(dir, "junk")
	os.MkdirAll(junk, 0o755)
	os.WriteFile(filepath.Join(junk, "notes.txt"), []byte("keep"), 0o644)

	out := filepath.Join(dir, "out")
	cases := []struct {
		b    string
		outs []Output
		want string
	}{
		{dOther, []Output{{0.5, out}}, "different configs"},
		{dTok, []Output{{0.5, out}}, "different tokenizers"},
		{dShape, []Output{{0.5, out}}, "shape"},
		{dMissing, []Output{{0.5, out}}, "missing"},
		{da, []Output{{0.5, junk}}, "refusing"},
		{da, []Output{{0.5, out}, {0.7, out}}, "two outputs"},
		{da, []Output{{math.NaN(), out}}, "not finite"},
	}
	for _, c := range cases {
		err := Interpolate(da, c.b, c.outs, Options{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one mentioning %q", c.b, err, c.want)
		}
		if _, err := os.Stat(out); err == nil {
			t.Fatalf("%s: an output appeared after a refusal", c.b)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(junk, "notes.txt")); string(b) != "keep" {
		t.Fatal("the non-checkpoint directory was touched")
	}
}

// A cancelled run (cpo-ensemble on SIGINT/SIGTERM) stops between tensors and leaves neither
// outputs nor temporary directories behind.
func TestInterpolateCancelled(t *testing.T) {
	dir := t.TempDir()
	cfg := tinyConfig(model.ArchLlama)
	_, da := save(t, dir, "mle", cfg, 1, safetensors.F32, `{"tok":1}`)
	_, db := save(t, dir, "cpo", cfg, 2, safetensors.F32, `{"tok":1}`)
	outDir := filepath.Join(dir, "out")
	if err := os.Mkdir(outDir, 0o755); err != nil {
		t.Fatal(err)
	}
	outs := []Output{{Alpha: 0.3, Dir: filepath.Join(outDir, "ens-a0.3")}, {Alpha: 1, Dir: filepath.Join(outDir, "ens-a1")}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	calls := 0
	err := Interpolate(da, db, outs, Options{Context: ctx, Progress: func(d, n int64) {
		calls++
		cancel() // as a signal arriving after the first tensor
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Interpolate after cancel: %v, want context.Canceled", err)
	}
	if calls != 1 {
		t.Errorf("%d tensors mixed after the cancel, want it to stop after the first", calls)
	}
	ents, _ := os.ReadDir(outDir)
	for _, e := range ents {
		t.Errorf("left behind: %s", e.Name())
	}
}

// An output directory that is one of the inputs (say -o ckpt/mle by mistake) is refused: it
// would replace a trained checkpoint with the mixture.
func TestInterpolateRefusesInputAsOutput(t *testing.T) {
	dir := t.TempDir()
	cfg := tinyConfig(model.ArchGPT2)
	_, da := save(t, dir, "mle", cfg, 1, safetensors.F32, `{"tok":1}`)
	_, db := save(t, dir, "cpo", cfg, 2, safetensors.F32, `{"tok":1}`)
	before, _ := os.ReadFile(filepath.Join(da, safetensors.SingleFileName))
	for _, out := range []string{da, db + "/", filepath.Join(dir, ".", "mle")} {
		err := Interpolate(da, db, []Output{{Alpha: 0.5, Dir: out}}, Options{})
		if err == nil || !strings.Contains(err.Error(), "input") {
			t.Errorf("output %s: %v, want a refusal naming the input", out, err)
		}
	}
	if after, _ := os.ReadFile(filepath.Join(da, safetensors.SingleFileName)); !bytes.Equal(before, after) {
		t.Fatal("the MLE checkpoint was replaced")
	}
}
