package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/cpo-toolchain/cpo/pkg/checkpoint"
)

// TestOutputLoadsBack runs the command in-process and loads what it wrote.
func TestOutputLoadsBack(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "tokenizer.json")
	os.WriteFile(tok, []byte(`{"model":{"type":"BPE"}}`), 0o644)
	for _, tc := range []struct {
		args []string
		arch string
		kv   int
	}{
		{[]string{"--preset", "tiny", "--layers", "2", "--width", "64", "--vocab", "300"}, "gpt2", 4},
		{[]string{"--arch", "llama", "--layers", "2", "--heads", "4", "--kv-heads", "1", "--width", "32", "--vocab", "100", "--dtype", "bf16"}, "llama", 1},
	} {
		out := filepath.Join(dir, tc.arch)
		args := append([]string{"cpo-init", "-q", "--seed", "5", "--out", out, "--tokenizer", tok}, tc.args...)
		if err := newApp().Run(args); err != nil {
			t.Fatal(err)
		}
		m, err := checkpoint.Load(out)
		if err != nil {
			t.Fatal(err)
		}
		if m.Config.Arch != tc.arch || m.Config.NLayer != 2 || m.Config.NKVHead != tc.kv {
			t.Errorf("config %+v", m.Config)
		}
		if _, err := os.Stat(filepath.Join(out, "tokenizer.json")); err != nil {
			t.Error("tokenizer not copied")
		}
		// Same configuration and seed in the package: the same values (exactly for f32).
		want, _ := checkpoint.NewRandom(m.Config, 5)
		fw, _ := checkpoint.Fingerprint(want)
		fg, _ := checkpoint.Fingerprint(m)
		if (tc.arch == "gpt2") != (fw == fg) {
			t.Errorf("%s: fingerprint %s, package %s", tc.arch, fg, fw)
		}
	}
	if err := newApp().Run([]string{"cpo-init", "-q", "--out", filepath.Join(dir, "x"), "--arch", "gpt2", "--kv-heads", "2"}); err == nil {
		t.Error("gpt2 with grouped-query attention accepted")
	}
}
