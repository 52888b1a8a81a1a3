package pipelines

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestEndToEnd builds every tool and runs the demo pipeline at a small scale, then the paper's
// Dolly pipeline (dolly.mk) on the demo's data and models with a few steps: every stage must
// chain with the next, and a rerun of make must find nothing to do. It guards the contracts
// between the tools, which each package's own tests cannot see.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every tool and runs both pipelines")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	build := exec.Command("go", "build", "-o", bin+"/", "../tools/...")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	demo := filepath.Join(dir, "demo")
	cmd := exec.Command("bash", "demo.sh")
	cmd.Env = append(os.Environ(), "OUT="+demo, "BIN="+bin, "DEMO_SCALE=0.05", "MLE_EPOCHS=1", "JUDGE_EPOCHS=1", "CPO_EPOCHS=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo.sh: %v\n%s", err, tail(out))
	}
	for _, f := range []string{"table.md", "table.csv", "figure1.png", "scores.parquet", "judgments.parquet", "models/mixnr-a0.5/config.json"} {
		if _, err := os.Stat(filepath.Join(demo, f)); err != nil {
			t.Fatalf("demo left no %s:\n%s", f, tail(out))
		}
	}
	md, _ := os.ReadFile(filepath.Join(demo, "table.md"))
	for _, want := range []string{"ExactMatch (greedy)", "WinRate diff (greedy)", "NLL/token eq.10", "| α |"} {
		if !strings.Contains(string(md), want) {
			t.Fatalf("demo table lacks %q:\n%s", want, md)
		}
	}

	args := []string{"-f", "dolly.mk", "OUT=" + filepath.Join(dir, "dolly"), "BIN=" + bin,
		"MODEL=" + filepath.Join(demo, "init"), "DATA=" + filepath.Join(demo, "data", "test.jsonl"),
		"MLE_STEPS=2", "CPO_STEPS=1", "BATCH=4", "MICRO=4", "N_EVAL=3", "MAX_NEW=8",
		"VARIANTS=tn", "RANKED=tn", "ALPHAS=0 0.5", "DECODINGS=greedy beam2", "SCORER=" + filepath.Join(demo, "judge")}
	if out, err := exec.Command("make", args...).CombinedOutput(); err != nil {
		t.Fatalf("make -f dolly.mk: %v\n%s", err, tail(out))
	}
	out, err = exec.Command("make", append([]string{"-q"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("a rerun of dolly.mk has work to do (make -q: %v)\n%s", err, out)
	}
	md, _ = os.ReadFile(filepath.Join(dir, "dolly", "table.md"))
	if !strings.Contains(string(md), "tnr") || !strings.Contains(string(md), "WinRate (beam2)") {
		t.Fatalf("dolly table:\n%s", md)
	}
}

func tail(b []byte) string {
	s := string(b)
	if len(s) > 4000 {
		s = "..." + s[len(s)-4000:]
	}
	return s
}
