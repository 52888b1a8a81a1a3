package safetensors_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/cpo-toolchain/cpo/pkg/safetensors"
)

// Write a file, then read one tensor back on demand.
func Example() {
	dir, _ := os.MkdirTemp("", "st")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "model.safetensors")
	w := []safetensors.Tensor{{Name: "w", Shape: []int{2, 2}, Data: []float32{1, 2.5, -3, 0.1}}}
	if err := safetensors.WriteFile(path, w, safetensors.BF16, map[string]string{"format": "pt"}); err != nil {
		panic(err)
	}
	f, err := safetensors.Open(path)
	if err != nil {
		panic(err)
	}
	defer f.Close()
	info, _ := f.Info("w")
	v, _ := f.Float32("w")
	fmt.Println(info.DType, info.Shape, v)
	// Output: BF16 [2 2] [1 2.5 -3 0.100097656]
}
