package checkpoint

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestHFWrittenCheckpoints loads checkpoints laid out as transformers and the hub leave them
// (written by scripts/checkpoint/hf_checkpoints.py: GPT-2 in F16 with the hub's unprefixed
// names and attention buffers, config.json with n_inner null; Llama in BF16, sharded, with
// rotary inv_freq buffers) and compares log-probabilities with PyTorch's float64 values.
func TestHFWrittenCheckpoints(t *testing.T) {
	root := "../../testdata/safetensors"
	b, err := os.ReadFile(filepath.Join(root, "hf_logprobs.json"))
	if err != nil {
		t.Fatal(err)
	}
	var gold map[string]struct {
		Lines    [][]int
		Logprobs [][]float64
	}
	if err := json.Unmarshal(b, &gold); err != nil {
		t.Fatal(err)
	}
	want := map[string]struct{ arch, dtype string }{"hf_gpt2_f16": {"gpt2", "F16"}, "hf_llama_bf16": {"llama", "BF16"},
		"hf_gpt2_bin": {"gpt2", "F32"}, "hf_llama_bin": {"llama", "F16"}}
	for name, g := range gold {
		dir := filepath.Join(root, name)
		m, err := Load(dir)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		in, err := Describe(dir)
		if err != nil || m.Config.Arch != want[name].arch || in.DType() != want[name].dtype {
			t.Errorf("%s: arch %s dtype %s %v", name, m.Config.Arch, in.DType(), err)
		}
		var sb strings.Builder
		for _, l := range g.Lines {
			for _, v := range l {
				sb.WriteString(strconv.Itoa(v) + " ")
			}
			sb.WriteString("\n")
		}
		var out bytes.Buffer
		if err := WriteLogprobs(m, strings.NewReader(sb.String()), &out, LogprobOptions{}); err != nil {
			t.Fatal(err)
		}
		worst := 0.0
		for i, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			var got []float64
			json.Unmarshal([]byte(line), &got)
			if len(got) != len(g.Logprobs[i]) {
				t.Fatalf("%s line %d: %d values want %d", name, i, len(got), len(g.Logprobs[i]))
			}
			for j := range got {
				worst = math.Max(worst, math.Abs(got[j]-g.Logprobs[i][j]))
			}
		}
		// float32 forward against float64: log-probabilities near -10 agree to ~1e-5.
		if worst > 1e-4 {
			t.Errorf("%s: max |logprob - PyTorch| = %g", name, worst)
		}
		t.Logf("%s: max |logprob - PyTorch| = %.3g", name, worst)
	}
	if len(TokenizerFilesIn(filepath.Join(root, "hf_gpt2_f16"))) != 1 {
		t.Error("tokenizer_config.json not found beside the gpt2 checkpoint")
	}
}
