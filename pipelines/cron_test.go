package pipelines

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeMk(t *testing.T, dir, body string) string {
	t.Helper()
	p := filepath.Join(dir, "p.mk")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func cronRun(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command("bash", append([]string{"cron-run.sh"}, args...)...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

func TestCronRunReportsFailingStage(t *testing.T) {
	dir := t.TempDir()
	mk := writeMk(t, dir, "all: train\n\t@echo done\ntokenize:\n\t@echo tok > $(OUT)/tok\ntrain: tokenize\n\t@echo training; exit 3\n")
	out, code := cronRun(t, "-r", filepath.Join(dir, "res"), "-n", "x", mk)
	if code == 0 {
		t.Fatalf("failing pipeline exited 0:\n%s", out)
	}
	if !strings.Contains(out, "FAILED at stage train") {
		t.Fatalf("failing stage not named:\n%s", out)
	}
	status, _ := os.ReadFile(filepath.Join(dir, "res", "latest", "STATUS"))
	if !strings.HasPrefix(string(status), "failed: stage train") {
		t.Fatalf("STATUS = %q", status)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "res", "latest", "run.log"))
	if !strings.Contains(string(log), "training") {
		t.Fatalf("run.log lacks the pipeline's output: %q", log)
	}
	if _, err := os.Stat(filepath.Join(dir, "res", "latest", "work", "tok")); err != nil {
		t.Fatal("OUT was not the run's work directory")
	}
}

func TestCronRunSucceedsAndDatesRuns(t *testing.T) {
	dir := t.TempDir()
	mk := writeMk(t, dir, "all:\n\t@echo fine > $(OUT)/result\n")
	out, code := cronRun(t, "-r", filepath.Join(dir, "res"), mk)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	runs, _ := filepath.Glob(filepath.Join(dir, "res", "20*-p"))
	if len(runs) != 1 {
		t.Fatalf("dated run directories: %v", runs)
	}
	status, _ := os.ReadFile(filepath.Join(runs[0], "STATUS"))
	if string(status) != "ok\n" {
		t.Fatalf("STATUS = %q", status)
	}
}

func TestCronRunLock(t *testing.T) {
	dir := t.TempDir()
	res := filepath.Join(dir, "res")
	mk := writeMk(t, dir, "all:\n\t@sleep 3\n")
	slow := exec.Command("bash", "cron-run.sh", "-r", res, mk)
	if err := slow.Start(); err != nil {
		t.Fatal(err)
	}
	defer slow.Wait()
	// Wait until the first run holds the lock.
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(filepath.Join(res, ".lock.owner")); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	out, code := cronRun(t, "-r", res, mk)
	if code != 75 || !strings.Contains(out, "another run holds") {
		t.Fatalf("second run: exit %d, %q; want 75 and a lock message", code, out)
	}
	if err := slow.Wait(); err != nil {
		t.Fatalf("first run failed: %v", err)
	}
}

// TestDollyProtocol checks that `make -n -f pipelines/dolly.mk` lays out the paper's whole
// protocol: tokenize and split, MLE, every negative kind and the mix, ranking and reference
// log-probs, CPO and ranked CPO, the α sweep, every decoding of Table 3, judging and scoring.
func TestDollyProtocol(t *testing.T) {
	out, err := exec.Command("make", "-n", "-f", "dolly.mk", "BIN=bin", "OUT=o").CombinedOutput()
	if err != nil {
		t.Fatalf("make -n: %v\n%s", err, out)
	}
	s := string(out)
	for _, want := range []string{
		"cpo-tokenize encode", "--format dolly --test-frac 0.5", "filter --where split=train", "filter --where split=test",
		"--objective mle", "--steps 2000",
		"--mix bn=11", "--mix mn=11", "--mix tn=11", "--mix an=11", "--mix bn=3,mn=5,tn=3",
		"cpo-embed", "precompute-ref",
		"--objective cpo -m o/mle -o o/models/mixn --beta 5 --lr 1e-5 --weight-decay 0.05 --batch 64",
		"--steps 1000", "--objective cpo-rank -m o/mle -o o/models/mixnr",
		"--alpha 0,0.1,0.3,0.5,0.7,0.9",
		"--strategy greedy", "--top-k 50 --top-p 1", "--top-k 50 --top-p 0.7", "--beams 2", "--beams 4", "--limit 1000",
		"cpo-judge", "cpo-score -q --baseline mle --table-columns alpha",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("dolly.mk protocol lacks %q", want)
		}
	}
	// DEVICE reaches every cpo-train run, the reference log-probabilities included.
	dev, err := exec.Command("make", "-n", "-f", "dolly.mk", "BIN=bin", "OUT=o", "DEVICE=--precision bf16").CombinedOutput()
	if err != nil {
		t.Fatalf("make -n DEVICE=...: %v\n%s", err, dev)
	}
	for _, want := range []string{"--objective mle --precision bf16 -m", "precompute-ref --precision bf16 -m",
		"--objective cpo --precision bf16 -m o/mle -o o/models/mixn", "--objective cpo-rank --precision bf16 -m"} {
		if !strings.Contains(string(dev), want) {
			t.Errorf("dolly.mk with DEVICE lacks %q", want)
		}
	}
	wiki, err := exec.Command("make", "-n", "-f", "wiki.mk", "BIN=bin", "OUT=w", "JUDGE=remote").CombinedOutput()
	if err != nil {
		t.Fatalf("make -n wiki.mk: %v\n%s", err, wiki)
	}
	for _, want := range []string{"--format text", "--prefix-frac 0.15", "--mix bn=4", "--template wiki"} {
		if !strings.Contains(string(wiki), want) {
			t.Errorf("wiki.mk protocol lacks %q", want)
		}
	}
}
