package generate

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/cpo-toolchain/cpo/pkg/model"
	"github.com/cpo-toolchain/cpo/pkg/shard"
	"github.com/cpo-toolchain/cpo/pkg/tokenizer"
)

func TestRows(t *testing.T) {
	tok, err := tokenizer.Load("../../testdata/tokenizer/sp/llama.model")
	if err != nil {
		t.Fatal(err)
	}
	m := tinyModel(t, model.ArchLlama, tok.VocabSize(), 21, 3)
	fp := tok.Fingerprint()
	texts := []string{"The quick brown fox", "Hello", strings.Repeat("A much longer prompt that will not fit. ", 6)}
	var prompts []Prompt
	for i, s := range texts {
		e := shard.Example{ID: string(rune('a' + i)), Prompt: s, Response: "ref " + s, PromptIDs: tok.Encode(s),
			ResponseIDs: tok.Encode("ref"), Tokenizer: fp}
		prompts = append(prompts, Prompt{Example: e, Pos: "test.parquet row " + string(rune('0'+i))})
	}
	if len(prompts[2].Example.PromptIDs) <= 64-10 {
		t.Fatalf("the long prompt has only %d tokens", len(prompts[2].Example.PromptIDs))
	}
	cfg := Config{Strategy: Sample, Temperature: 1, TopK: 50, TopP: 0.7, MaxNewTokens: 10, EOS: tok.EOS(), Seed: 9}
	ntok := 0
	rows, err := NewRows(m, cfg, RowOptions{Batch: 2, NumSamples: 3, TruncateLeft: true, ModelFingerprint: "fp-model",
		ModelName: "tiny", Tokenizer: tok, Chunk: 2, Progress: func(n int) { ntok += n }})
	if err != nil {
		t.Fatal(err)
	}
	var got []*shard.Generation
	if err := rows.Run(context.Background(), prompts, func(g *shard.Generation) error { got = append(got, g); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 9 {
		t.Fatalf("%d rows, want 3 prompts x 3 samples", len(got))
	}
	sum := 0
	for k, g := range got {
		i, s := k/3, k%3
		e := prompts[i].Example
		if g.ID != e.ID || int(g.Sample) != s || g.Reference != e.Response || !slices.Equal(g.ReferenceIDs, e.ResponseIDs) ||
			g.Model != "fp-model" || g.ModelName != "tiny" || g.Decoding != "top-k50-p0.7" || g.Tokenizer != fp {
			t.Fatalf("row %d: %+v", k, g)
		}
		if g.Seed != RowSeed(9, e.ID, s) {
			t.Fatalf("row %d: seed %d", k, g.Seed)
		}
		var js map[string]any
		if err := json.Unmarshal([]byte(g.DecodingConfig), &js); err != nil || js["top_p"] != 0.7 {
			t.Fatalf("row %d: decoding config %s (%v)", k, g.DecodingConfig, err)
		}
		want := e.PromptIDs
		if i == 2 {
			want = want[len(want)-(64-10):]
		}
		if !slices.Equal(g.PromptIDs, want) {
			t.Fatalf("row %d: prompt ids %v, want %v", k, g.PromptIDs, want)
		}
		body := g.IDs
		if g.Finish == FinishEOS {
			body = body[:len(body)-1]
		}
		if text, _ := tok.Decode(body); text != g.Text {
			t.Fatalf("row %d: text %q, decode %q", k, g.Text, text)
		}
		sum += len(g.IDs)
	}
	if sum != ntok {
		t.Fatalf("progress counted %d tokens, rows hold %d", ntok, sum)
	}
	if slices.Equal(got[0].IDs, got[1].IDs) && slices.Equal(got[1].IDs, got[2].IDs) {
		t.Fatal("three samples of one prompt are identical")
	}

	// The same rows with another batch and chunking.
	rows2, err := NewRows(m, cfg, RowOptions{Batch: 5, NumSamples: 3, TruncateLeft: true, ModelFingerprint: "fp-model", ModelName: "tiny", Tokenizer: tok})
	if err != nil {
		t.Fatal(err)
	}
	k := 0
	if err := rows2.Run(context.Background(), prompts, func(g *shard.Generation) error {
		if !slices.Equal(g.IDs, got[k].IDs) {
			t.Fatalf("row %d differs with batch 5: %v vs %v", k, g.IDs, got[k].IDs)
		}
		k++
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// Bad input.
	noTrunc, _ := NewRows(m, cfg, RowOptions{Batch: 2, NumSamples: 1, Tokenizer: tok})
	err = noTrunc.Run(context.Background(), prompts, func(*shard.Generation) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "test.parquet row 2") || !strings.Contains(err.Error(), "truncate-left") {
		t.Fatalf("too long prompt: %v", err)
	}
	other := slices.Clone(prompts[:1])
	other[0].Example.Tokenizer = "0123456789abcdef"
	err = noTrunc.Run(context.Background(), other, func(*shard.Generation) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "tokenizer 0123456789ab") {
		t.Fatalf("other tokenizer: %v", err)
	}
	if _, err := NewRows(m, Config{Strategy: Greedy, MaxNewTokens: 5, EOS: 2}, RowOptions{Batch: 1, NumSamples: 2, Tokenizer: tok}); err == nil {
		t.Fatal("2 greedy samples accepted")
	}
}

// A prompt that starts with BOS (Llama/OpenLlama prompts from cpo-tokenize) keeps its BOS when
// cut from the left, as cpo-tokenize's own truncation does: a Llama prompt without BOS is out of
// the distribution the model was trained on.
func TestRowsTruncateKeepsBOS(t *testing.T) {
	tok, err := tokenizer.Load("../../testdata/tokenizer/sp/llama.model")
	if err != nil {
		t.Fatal(err)
	}
	bos := tok.BOS()
	if bos < 0 {
		t.Fatal("the test tokenizer has no BOS")
	}
	m := tinyModel(t, model.ArchLlama, tok.VocabSize(), 21, 3)
	long := append([]int32{bos}, tok.Encode(strings.Repeat("A much longer prompt that will not fit. ", 6))...)
	short := append([]int32{bos}, tok.Encode("Hello")...)
	var prompts []Prompt
	for i, ids := range [][]int32{long, short} {
		prompts = append(prompts, Prompt{Example: shard.Example{ID: string(rune('a' + i)), Prompt: "p", Response: "r",
			PromptIDs: ids, Tokenizer: tok.Fingerprint()}, Pos: "row"})
	}
	cfg := Config{Strategy: Greedy, MaxNewTokens: 10, EOS: tok.EOS()}
	rows, err := NewRows(m, cfg, RowOptions{Batch: 2, NumSamples: 1, TruncateLeft: true, Tokenizer: tok})
	if err != nil {
		t.Fatal(err)
	}
	var got []*shard.Generation
	if err := rows.Run(context.Background(), prompts, func(g *shard.Generation) error { got = append(got, g); return nil }); err != nil {
		t.Fatal(err)
	}
	maxP := 64 - 10
	want := append([]int32{bos}, long[len(long)-(maxP-1):]...)
	if !slices.Equal(got[0].PromptIDs, want) {
		t.Fatalf("truncated prompt %v, want BOS then the last %d tokens %v", got[0].PromptIDs, maxP-1, want)
	}
	if !slices.Equal(got[1].PromptIDs, short) {
		t.Fatalf("short prompt changed: %v, want %v", got[1].PromptIDs, short)
	}
}

// decoding_config records vocab_limit only when the tokenizer is smaller than the model (the
// documented meaning), not the model's own vocabulary size on every row.
func TestDecodingConfigVocabLimit(t *testing.T) {
	tok, err := tokenizer.Load("../../testdata/tokenizer/sp/llama.model")
	if err != nil {
		t.Fatal(err)
	}
	p := []Prompt{{Example: shard.Example{ID: "a", Prompt: "p", Response: "r", PromptIDs: tok.Encode("Hello"), Tokenizer: tok.Fingerprint()}, Pos: "row 0"}}
	for _, extra := range []int{0, 7} {
		m := tinyModel(t, model.ArchLlama, tok.VocabSize()+extra, 21, 3)
		rows, err := NewRows(m, Config{Strategy: Greedy, MaxNewTokens: 4, EOS: tok.EOS()}, RowOptions{Batch: 1, NumSamples: 1, Tokenizer: tok})
		if err != nil {
			t.Fatal(err)
		}
		var got *shard.Generation
		if err := rows.Run(context.Background(), p, func(g *shard.Generation) error { got = g; return nil }); err != nil {
			t.Fatal(err)
		}
		has := strings.Contains(got.DecodingConfig, `"vocab_limit"`)
		if has != (extra > 0) || (extra > 0 && !strings.Contains(got.DecodingConfig, fmt.Sprintf(`"vocab_limit":%d`, tok.VocabSize()))) {
			t.Errorf("model %d tokens, tokenizer %d: decoding config %s", tok.VocabSize()+extra, tok.VocabSize(), got.DecodingConfig)
		}
	}
}
