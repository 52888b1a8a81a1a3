package tokenizer

import (
	"os"
	"path/filepath"
	"testing"
)

// benchText is the English benchmark text (Go documentation and license texts, ~480 KB).
func benchText(b *testing.B) []byte {
	b.Helper()
	p := gunzipTo(b, filepath.Join(gpt2Dir, "bench_en.txt.gz"), b.TempDir(), "bench_en.txt")
	data, err := os.ReadFile(p)
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// BenchmarkEncodeGPT2 measures single-thread GPT-2 encoding throughput (MB/s) on English
// text with a warm word cache, as a long-running encoder sees it. Compare with
// scripts/tokenizer/bench.js, which times Hugging Face tokenizers and tiktoken on the same
// text.
func BenchmarkEncodeGPT2(b *testing.B) {
	tok := loadGPT2(b)
	text := benchText(b)
	e := tok.NewEncoder()
	dst := e.EncodeOrdinary(nil, text)
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	for b.Loop() {
		dst = e.EncodeOrdinary(dst[:0], text)
	}
	b.ReportMetric(float64(len(text))/float64(len(dst)), "bytes/token")
}

// BenchmarkEncodeGPT2Cold is BenchmarkEncodeGPT2 with an empty word cache every time.
func BenchmarkEncodeGPT2Cold(b *testing.B) {
	tok := loadGPT2(b)
	text := benchText(b)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		tok.NewEncoder().EncodeOrdinary(nil, text)
	}
}

// BenchmarkEncodeSentencePiece measures the Llama-style model on the same text.
func BenchmarkEncodeSentencePiece(b *testing.B) {
	tok, err := Load(filepath.Join(spDir, "llama.model"))
	if err != nil {
		b.Fatal(err)
	}
	text := benchText(b)
	e := tok.NewEncoder()
	dst := e.EncodeOrdinary(nil, text)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		dst = e.EncodeOrdinary(dst[:0], text)
	}
}

// BenchmarkDecodeGPT2 measures decoding throughput in bytes of text per second.
func BenchmarkDecodeGPT2(b *testing.B) {
	tok := loadGPT2(b)
	text := benchText(b)
	ids := tok.EncodeOrdinary(string(text))
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		if _, err := tok.Decode(ids); err != nil {
			b.Fatal(err)
		}
	}
}
