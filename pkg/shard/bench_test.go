package shard

import (
	"math/rand"
	"os"
	"path/filepath"
	"testing"
)

// benchRows makes example rows holding about total token ids (prompt 64 + response 192 each).
func benchRows(total int) []Example {
	rng := rand.New(rand.NewSource(1))
	n := total / 256
	rows := make([]Example, n)
	ids := make([]int32, total)
	for i := range ids {
		ids[i] = rng.Int31n(50257)
	}
	for i := range rows {
		rows[i] = Example{ID: "r", Source: "bench", Split: "train", Tokenizer: "fp",
			PromptIDs: ids[i*256 : i*256+64], ResponseIDs: ids[i*256+64 : (i+1)*256]}
	}
	return rows
}

const benchTokens = 10_000_000

var benchLevel = DefaultZstdLevel

// BenchmarkShardWrite measures writing 10 million token ids (list<int32>) at the default zstd
// level; the tokens/s metric is what `make bench` reports.
func BenchmarkShardWrite(b *testing.B) {
	rows := benchRows(benchTokens)
	path := filepath.Join(b.TempDir(), "w.parquet")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w, err := NewWriter[Example](path, nil, Options{ZstdLevel: benchLevel})
		if err != nil {
			b.Fatal(err)
		}
		if err := w.Write(rows...); err != nil {
			b.Fatal(err)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(benchTokens)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mtokens/s")
	st, _ := os.Stat(path)
	b.ReportMetric(float64(st.Size())/float64(benchTokens), "bytes/token")
}

// BenchmarkShardRead measures reading the same shard back into typed rows.
func BenchmarkShardRead(b *testing.B) {
	rows := benchRows(benchTokens)
	path := filepath.Join(b.TempDir(), "r.parquet")
	w, _ := NewWriter[Example](path, nil, Options{})
	w.Write(rows...)
	w.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n := 0
		err := Each([]string{path}, nil, func(r Example) error { n += len(r.PromptIDs) + len(r.ResponseIDs); return nil })
		if err != nil || n != benchTokens/256*256 {
			b.Fatal(err, n)
		}
	}
	b.ReportMetric(float64(benchTokens)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mtokens/s")
}
