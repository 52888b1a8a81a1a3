package embed

import (
	"context"
	"testing"

	"github.com/cpo-toolchain/cpo/pkg/model"
	"github.com/cpo-toolchain/cpo/pkg/shard"
)

// BenchmarkEmbed ranks rows of K = 12 candidates on the tiny preset (GPT-2, 4 layers, width 256,
// V 8192): rows/s and tokens/s through the model.
//
//	go test ./pkg/embed -run '^$' -bench . -benchtime 3x
func BenchmarkEmbed(b *testing.B) {
	m, err := model.New(model.Config{Arch: model.ArchGPT2, VocabSize: 8192, MaxSeqLen: 128, NLayer: 4, NHead: 4, NKVHead: 4,
		DModel: 256, DFF: 1024, NormEps: 1e-5, TieEmbeddings: true, BOS: -1, EOS: 1})
	if err != nil {
		b.Fatal(err)
	}
	m.InitGPT2Style(1)
	rows := makeRows(64, 12, 8192, 1)
	for _, noPrompt := range []bool{false, true} {
		name := "with-prompt"
		if noPrompt {
			name = "no-prompt"
		}
		b.Run(name, func(b *testing.B) {
			var st Stats
			for b.Loop() {
				st, err = Run(context.Background(), &sliceSource{rows: rows}, func(...shard.Candidates) error { return nil },
					Options{Model: m, NoPrompt: noPrompt})
				if err != nil {
					b.Fatal(err)
				}
			}
			sec := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(float64(st.Rows)/sec, "rows/s")
			b.ReportMetric(float64(st.Tokens)/sec, "tokens/s")
		})
	}
}
