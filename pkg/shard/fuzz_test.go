package shard

import (
	"bytes"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
)

// FuzzRead feeds arbitrary bytes (seeded with valid shards and corruptions of them) to the
// reader: it must return rows or an error, never panic or hang.
func FuzzRead(f *testing.F) {
	var buf bytes.Buffer
	w, _ := NewWriter[Example]("-", &buf, Options{RowGroupRows: 3})
	w.Write(sampleExamples(7, rand.New(rand.NewSource(1)))...)
	w.Close()
	good := buf.Bytes()
	f.Add(good)
	f.Add(good[:len(good)/2])
	for _, i := range []int{4, 40, 100, len(good) - 12, len(good) - 9} {
		if i > 0 && i < len(good) {
			b := append([]byte(nil), good...)
			b[i] ^= 0xff
			f.Add(b)
		}
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "f.parquet")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		rows, err := ReadAll[Example]([]string{p}, nil)
		if err == nil && len(rows) > 1<<20 {
			t.Fatalf("implausible %d rows", len(rows))
		}
	})
}
