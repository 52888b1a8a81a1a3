package negatives

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/cpo-toolchain/cpo/pkg/model"
	"github.com/cpo-toolchain/cpo/pkg/shard"
)

// Throughput of each kind: rows/s and negative tokens/s, on the tiny preset (GPT-2, 4 layers,
// width 256, V 8192, context 128) and, for mn and an, on GPT-2 small (124M, random weights):
//
//	go test ./pkg/negatives -run '^$' -bench . -benchtime 3x
//
// BenchmarkShardIO compares bn and tn with a plain read-and-write of the same shard.

func benchRows(n, v, promptLen, respLen int) []shard.Example {
	rng := rand.New(rand.NewPCG(1, 2))
	rows := make([]shard.Example, n)
	for i := range rows {
		p := make([]int32, promptLen)
		r := make([]int32, respLen)
		for j := range p {
			p[j] = int32(4 + rng.IntN(v-4))
		}
		for j := range r {
			r[j] = int32(4 + rng.IntN(v-4))
		}
		r[respLen-1] = eos
		rows[i] = shard.Example{ID: fmt.Sprint("b", i), PromptIDs: p, ResponseIDs: r, Tokenizer: "t"}
	}
	return rows
}

func benchModel(b *testing.B, small bool) *model.Model {
	cfg := model.Config{Arch: model.ArchGPT2, VocabSize: 8192, MaxSeqLen: 128, NLayer: 4, NHead: 4, NKVHead: 4, DModel: 256, DFF: 1024,
		NormEps: 1e-5, TieEmbeddings: true, BOS: eos, EOS: eos}
	if small {
		cfg = model.Config{Arch: model.ArchGPT2, VocabSize: 50257, MaxSeqLen: 1024, NLayer: 12, NHead: 12, NKVHead: 12, DModel: 768, DFF: 3072,
			NormEps: 1e-5, TieEmbeddings: true, BOS: 50256, EOS: 50256}
	}
	m, err := model.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	m.InitGPT2Style(1)
	return m
}

func benchKind(b *testing.B, rows []shard.Example, o Options) {
	b.ReportAllocs()
	var st Stats
	for b.Loop() {
		var err error
		st, err = Run(context.Background(), &sliceSource{rows: rows}, func(...shard.Candidates) error { return nil }, o)
		if err != nil {
			b.Fatal(err)
		}
	}
	sec := b.Elapsed().Seconds() / float64(b.N)
	var tok int64
	for _, t := range st.Tokens {
		tok += t
	}
	b.ReportMetric(float64(len(rows))/sec, "rows/s")
	b.ReportMetric(float64(tok)/sec, "neg-tokens/s")
}

func BenchmarkKinds(b *testing.B) {
	tiny := benchModel(b, false)
	rows := benchRows(2000, 8192, 32, 64)
	b.Run("bn=3", func(b *testing.B) { benchKind(b, rows, Options{Mix: Mix{BN: 3}, EOS: eos}) })
	b.Run("tn=3", func(b *testing.B) { benchKind(b, rows, Options{Mix: Mix{TN: 3}, EOS: eos}) })
	b.Run("mn=5/tiny", func(b *testing.B) { benchKind(b, rows[:256], Options{Mix: Mix{MN: 5}, EOS: eos, Model: tiny}) })
	b.Run("an=1/tiny", func(b *testing.B) {
		benchKind(b, rows[:32], Options{Mix: Mix{AN: 1}, EOS: -1, Model: tiny, AN: ANOptions{MaxNewTokens: 64}})
	})
	b.Run("mixn/tiny", func(b *testing.B) { benchKind(b, rows[:256], Options{Mix: MixN, EOS: eos, Model: tiny}) })
}

func BenchmarkGPT2Small(b *testing.B) {
	m := benchModel(b, true)
	rows := benchRows(64, 50257, 64, 128)
	b.Run("mn=5", func(b *testing.B) { benchKind(b, rows, Options{Mix: Mix{MN: 5}, EOS: 50256, Model: m}) })
	b.Run("an=1", func(b *testing.B) {
		benchKind(b, rows[:16], Options{Mix: Mix{AN: 1}, EOS: -1, Model: m, AN: ANOptions{MaxNewTokens: 64}})
	})
}

// BenchmarkShardIO reads an example shard and writes a candidates shard: "copy-k1" with the
// ground truth only, "copy-k7" with the ground truth and 6 copies of it (the volume of 6
// negatives), "bn3tn3" with 3 batch and 3 truncation negatives per row (tn average half the
// response, so it writes less than copy-k7).
func BenchmarkShardIO(b *testing.B) {
	dir := b.TempDir()
	in := filepath.Join(dir, "ex.parquet")
	rows := benchRows(20000, 50257, 32, 128)
	w, err := shard.NewWriter[shard.Example](in, nil, shard.Options{})
	if err != nil {
		b.Fatal(err)
	}
	w.Write(rows...)
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	out := filepath.Join(dir, "cand.parquet")
	pass := func(b *testing.B, mix *Mix, copies int) {
		for b.Loop() {
			r, err := shard.NewReader[shard.Example]([]string{in}, nil)
			if err != nil {
				b.Fatal(err)
			}
			cw, err := shard.NewWriter[shard.Candidates](out, nil, shard.Options{})
			if err != nil {
				b.Fatal(err)
			}
			if mix == nil {
				for {
					ex, err := r.Next()
					if err == io.EOF {
						break
					}
					var c shard.Candidates
					c.SetExample(ex)
					c.Candidates = []shard.Candidate{{Kind: shard.KindGT, IDs: ex.ResponseIDs}}
					for range copies {
						c.Candidates = append(c.Candidates, shard.Candidate{Kind: shard.KindBN, IDs: ex.ResponseIDs})
					}
					cw.Write(c)
				}
			} else if _, err := Run(context.Background(), r, func(c ...shard.Candidates) error { return cw.Write(c...) }, Options{Mix: *mix, EOS: eos}); err != nil {
				b.Fatal(err)
			}
			r.Close()
			if err := cw.Close(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(rows))*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	}
	b.Run("copy-k1", func(b *testing.B) { pass(b, nil, 0) })
	b.Run("copy-k7", func(b *testing.B) { pass(b, nil, 6) })
	b.Run("bn3tn3", func(b *testing.B) { pass(b, &Mix{BN: 3, TN: 3}, 0) })
}
