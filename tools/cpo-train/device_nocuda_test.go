//go:build !cuda

package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/cpo-toolchain/cpo/pkg/cliutil"
	"github.com/cpo-toolchain/cpo/pkg/cuda"
)

// Without the cuda tag, --device cuda is a usage error with cuda.ErrNotBuilt's message, at
// once: the model and the data named here do not exist, and are not opened.
func TestDeviceCUDAWithoutTag(t *testing.T) {
	for _, args := range [][]string{
		{"--device", "cuda", "-m", "no-such-model", "-o", "out", "no-such.parquet"},
		{"--device", "cuda", "--precision", "fp32", "--gpu", "1", "-m", "no-such-model", "-o", "out", "no-such.parquet"},
		{"precompute-ref", "--device", "cuda", "-m", "no-such-model", "-o", "out.parquet", "no-such.parquet"},
		{"bench", "--device", "cuda", "-m", "no-such-model"},
	} {
		_, err := run(t, args...)
		var ue cliutil.UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), cuda.ErrNotBuilt.Error()) {
			t.Errorf("%v: %v", args, err)
		}
	}
}
