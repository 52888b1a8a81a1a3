package generate

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cpo-toolchain/cpo/pkg/model"
)

// TestGreedyGolden compares greedy generations with those of the PyTorch reference
// (scripts/reference/generate_golden.py: float64, a full forward pass per step) from the same
// weights: ids exactly, log Q(y|x) within 1e-4.
func TestGreedyGolden(t *testing.T) {
	for _, name := range []string{"gpt2", "llama"} {
		dir := filepath.Join("..", "..", "testdata", "golden", "generate")
		js, err := os.ReadFile(filepath.Join(dir, name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		blob, err := os.ReadFile(filepath.Join(dir, name+".bin"))
		if err != nil {
			t.Fatal(err)
		}
		var g struct {
			HFConfig     json.RawMessage `json:"hf_config"`
			MaxNewTokens int             `json:"max_new_tokens"`
			EOS          int32           `json:"eos"`
			Prompts      [][]int32       `json:"prompts"`
			Generated    [][]int32       `json:"generated"`
			Logp         []float64       `json:"logp"`
			Tensors      []struct {
				Name   string `json:"name"`
				Shape  []int  `json:"shape"`
				Offset int    `json:"offset"`
			} `json:"tensors"`
		}
		if err := json.Unmarshal(js, &g); err != nil {
			t.Fatalf("%s.json: %v", name, err)
		}
		cfg, err := model.ParseHFConfig(g.HFConfig)
		if err != nil {
			t.Fatal(err)
		}
		m, err := model.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		filled := 0
		for _, ts := range g.Tensors {
			p := m.Param(strings.TrimPrefix(ts.Name, "param/"))
			if p == nil || !slices.Equal(p.Shape, ts.Shape) {
				t.Fatalf("%s: tensor %s %v does not match the model", name, ts.Name, ts.Shape)
			}
			if ts.Offset+4*len(p.Data) > len(blob) {
				t.Fatalf("%s: tensor %s outside the file", name, ts.Name)
			}
			for i := range p.Data {
				p.Data[i] = math.Float32frombits(binary.LittleEndian.Uint32(blob[ts.Offset+4*i:]))
			}
			filled++
		}
		if filled != len(m.Params()) {
			t.Fatalf("%s: %d of %d parameters in the golden", name, filled, len(m.Params()))
		}
		reqs := make([]Request, len(g.Prompts))
		for i, p := range g.Prompts {
			reqs[i].Prompt = p
		}
		gen, err := New(m, Config{Strategy: Greedy, MaxNewTokens: g.MaxNewTokens, EOS: g.EOS}, 4)
		if err != nil {
			t.Fatal(err)
		}
		res, err := gen.Generate(context.Background(), reqs, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range res {
			if !slices.Equal(r.IDs, g.Generated[i]) {
				t.Errorf("%s prompt %d: generated %v, PyTorch %v", name, i, r.IDs, g.Generated[i])
			}
			if math.Abs(r.Logp-g.Logp[i]) > 1e-4 {
				t.Errorf("%s prompt %d: logp %.6f, PyTorch %.6f", name, i, r.Logp, g.Logp[i])
			}
		}
	}
}
