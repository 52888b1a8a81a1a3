package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cpo-toolchain/cpo/pkg/cliutil"
)

// Numeric flags out of range are usage errors, not silently replaced by a default.
func TestBadNumbersAreUsageErrors(t *testing.T) {
	t.Setenv("CPO_TEST_KEY", "k")
	for _, bad := range [][]string{
		{"--concurrency", "0"}, {"--concurrency", "-2"}, {"--retries", "-1"}, {"--max-tokens", "0"},
		{"--timeout", "0s"}, {"--backoff", "-1s"}, {"--max-conn-failures", "0"}, {"--batch-tokens", "0"},
	} {
		app := newApp()
		app.Writer, app.ErrWriter = io.Discard, io.Discard
		args := append([]string{"cpo-judge", "--judge", "remote", "--model", "m", "--api-key-env", "CPO_TEST_KEY", "--no-cache"}, bad...)
		err := app.Run(append(args, "/nonexistent/gen.parquet"))
		var ue cliutil.UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), bad[0]) {
			t.Errorf("%s %s: %v, want a usage error naming %s", bad[0], bad[1], err, bad[0])
		}
	}
}

// --out naming an input (generations or --references) is refused.
func TestOutputIsInputRefused(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "gen.parquet")
	if err := os.WriteFile(in, []byte("generations"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"-o", in, in}, {"-o", dir, in}, {"--references", in, "-o", in, "other.parquet"}} {
		app := newApp()
		app.Writer, app.ErrWriter = io.Discard, io.Discard
		err := app.Run(append([]string{"cpo-judge", "--judge-model", "m"}, args...))
		var ue cliutil.UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "would replace the input") {
			t.Errorf("%v: %v", args, err)
		}
	}
}
