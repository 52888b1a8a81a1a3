package main

import (
	"errors"
	"io"
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
