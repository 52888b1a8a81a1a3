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
