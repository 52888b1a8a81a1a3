package embed

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/cpo-toolchain/cpo/pkg/shard"
)

// The .npy file and its index are ordinary readable files (0644), not the 0600 of the
// temporary files they are written as.
func TestEmbeddingFilesAreReadable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "e.npy")
	ew, err := NewEmbeddingWriter(path, 2)
	if err != nil {
		t.Fatal(err)
	}
	row := &shard.Candidates{ID: "r", Candidates: []shard.Candidate{{Kind: shard.KindGT, IDs: []int32{1}}}}
	if err := ew.Write(row, [][]float32{{1, 2}}); err != nil {
		t.Fatal(err)
	}
	if err := ew.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, IndexPath(path)} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o644 {
			t.Errorf("%s: mode %v, want -rw-r--r--", filepath.Base(p), st.Mode().Perm())
		}
	}
}
