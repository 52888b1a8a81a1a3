//go:build !cuda

package train

import (
	"context"
	"errors"
	"testing"

	"github.com/cpo-toolchain/cpo/pkg/cuda"
)

// In a binary built without the cuda tag, asking for the GPU fails at once with
// cuda.ErrNotBuilt: the device check, New and PrecomputeRefOn.
func TestCUDANotBuilt(t *testing.T) {
	d := DeviceConfig{Name: DeviceCUDA, Precision: cuda.BF16}
	if err := d.Check(); !errors.Is(err, cuda.ErrNotBuilt) {
		t.Errorf("Check: %v", err)
	}
	cfg := Config{Objective: Objective{Name: CPO, Beta: 1}, Batch: 2, Device: d}
	if _, err := New(cfg, tinyModel(t, 1), "fp", madeUpItems(4, 2, 1)); !errors.Is(err, cuda.ErrNotBuilt) {
		t.Errorf("New: %v", err)
	}
	if err := PrecomputeRefOn(context.Background(), d, tinyModel(t, 1), "fp", "", nil, nil, nil, 1, nil); !errors.Is(err, cuda.ErrNotBuilt) {
		t.Errorf("PrecomputeRefOn: %v", err)
	}
	if _, err := Bench(context.Background(), tinyModel(t, 1), BenchConfig{Objective: MLE, Batch: 1, SeqLen: 4, Steps: 1, Device: d}); !errors.Is(err, cuda.ErrNotBuilt) {
		t.Errorf("Bench: %v", err)
	}
}
