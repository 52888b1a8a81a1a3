package checkpoint

import (
	"bytes"
	"encoding/json"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cpo-toolchain/cpo/pkg/model"
	"github.com/cpo-toolchain/cpo/pkg/safetensors"
)

// refLogprobs computes log p(s[t] | s[<t]) from the model's logits with a float64 log-softmax.
func refLogprobs(m *model.Model, s []int32) []float64 {
	ws := model.NewWorkspace()
	logits := m.Logits(ws, model.Pack([][]int32{s}))
	V := m.Config.VocabSize
	var out []float64
	for t := 0; t+1 < len(s); t++ {
		row := logits[t*V : (t+1)*V]
		mx := math.Inf(-1)
		for _, v := range row {
			mx = math.Max(mx, float64(v))
		}
		var z float64
		for _, v := range row {
			z += math.Exp(float64(v) - mx)
		}
		out = append(out, float64(row[s[t+1]])-mx-math.Log(z))
	}
	return out
}

func TestWriteLogprobs(t *testing.T) {
	for _, cfg := range []model.Config{gpt2Config(), llamaConfig(false)} {
		m := randomModel(t, cfg, 11)
		lines := [][]int32{{1, 5, 7, 2}, {}, {3}, {4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4}, {0, 9}}
		var in strings.Builder
		for _, l := range lines {
			for _, v := range l {
				in.WriteString(" " + itoa(int(v)) + " ") // extra spaces are allowed
			}
			in.WriteString("\n")
		}
		for _, bt := range []int{0, 1, 5} {
			var out bytes.Buffer
			if err := WriteLogprobs(m, strings.NewReader(in.String()), &out, LogprobOptions{BatchTokens: bt}); err != nil {
				t.Fatal(err)
			}
			got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
			if len(got) != len(lines) {
				t.Fatalf("%d output lines for %d inputs", len(got), len(lines))
			}
			for i, l := range lines {
				var vs []float64
				if err := json.Unmarshal([]byte(got[i]), &vs); err != nil {
					t.Fatalf("line %d: %q: %v", i, got[i], err)
				}
				want := refLogprobs(m, l)
				if len(l) == 0 {
					want = nil
				}
				if len(vs) != len(want) {
					t.Fatalf("line %d: %d values want %d", i, len(vs), len(want))
				}
				for j := range vs {
					if math.Abs(vs[j]-want[j]) > 1e-4*math.Max(1, math.Abs(want[j])) || vs[j] > 0 {
						t.Errorf("%s line %d pos %d: %v want %v", cfg.Arch, i, j, vs[j], want[j])
					}
				}
			}
		}
	}
}

func itoa(v int) string { b, _ := json.Marshal(v); return string(b) }

func TestWriteLogprobsErrors(t *testing.T) {
	m := randomModel(t, gpt2Config(), 1)
	cases := map[string]string{
		"1 2\n3 50\n":                   "stdin line 2: token 2: \"50\" is not a token id in [0, 50)",
		"1 x\n":                         "stdin line 1: token 2",
		"-1\n":                          "stdin line 1",
		strings.Repeat("1 ", 17) + "\n": "stdin line 1: 17 tokens, more than the model's maximum sequence length 16",
	}
	for in, want := range cases {
		err := WriteLogprobs(m, strings.NewReader(in), &bytes.Buffer{}, LogprobOptions{})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", in, err, want)
		}
	}
}

func TestSummarize(t *testing.T) {
	m := randomModel(t, llamaConfig(false), 2)
	dir := filepath.Join(t.TempDir(), "m")
	if err := Save(m, dir, safetensors.BF16); err != nil {
		t.Fatal(err)
	}
	s, err := Summarize(dir)
	if err != nil {
		t.Fatal(err)
	}
	m2, _ := Load(dir)
	fp, _ := Fingerprint(m2)
	if s.Arch != "llama" || s.Params != m.NumParams() || s.DType != "BF16" || s.KVHeads != 2 || s.Fingerprint != fp || s.RopeTheta != 10000 {
		t.Errorf("%+v", s)
	}
	var buf bytes.Buffer
	s.WriteText(&buf)
	for _, want := range []string{"arch:        llama", "dtype:       BF16", "fingerprint: " + fp, "heads:       4 (kv 2, head size 4)"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, buf.String())
		}
	}
}
