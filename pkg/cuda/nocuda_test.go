//go:build !cuda

package cuda

import (
	"errors"
	"testing"

	"github.com/cpo-toolchain/cpo/pkg/model"
)

func TestNewWithoutTag(t *testing.T) {
	cfg := model.Config{Arch: model.ArchGPT2, VocabSize: 16, MaxSeqLen: 8, NLayer: 1, NHead: 2, NKVHead: 2, DModel: 8, DFF: 32, NormEps: 1e-5, TieEmbeddings: true}
	m, err := model.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(m, Options{}); !errors.Is(err, ErrNotBuilt) || Built {
		t.Errorf("New without the cuda tag: %v (Built %v)", err, Built)
	}
}
