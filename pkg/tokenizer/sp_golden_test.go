package tokenizer

import (
	"path/filepath"
	"slices"
	"testing"
)

const spDir = "../../testdata/tokenizer/sp"

type spGolden struct {
	Text string  `json:"text"`
	IDs  []int32 `json:"ids"`
}

// TestSentencePieceGoldens checks id-for-id equality with spm_encode for two models
// trained by spm_train: Llama-style (identity normalizer), SentencePiece's defaults
// (nmt_nfkc precompiled normalizer, extra whitespace removed), and one without byte
// fallback (unknown characters become <unk>, runs fused).
func TestSentencePieceGoldens(t *testing.T) {
	for _, name := range []string{"llama", "nfkc", "nobyte"} {
		t.Run(name, func(t *testing.T) {
			tok, err := Load(filepath.Join(spDir, name+".model"))
			if err != nil {
				t.Fatal(err)
			}
			if tok.Kind() != SentencePiece {
				t.Fatalf("kind %v", tok.Kind())
			}
			goldens := readGoldens[spGolden](t, filepath.Join(spDir, name+".goldens.jsonl.gz"))
			bad := 0
			for k, g := range goldens {
				got := tok.EncodeOrdinary(g.Text)
				if !slices.Equal(got, g.IDs) {
					bad++
					if bad <= 5 {
						t.Errorf("line %d %q:\n got %v\nwant %v (spm_encode)", k+1, trunc(g.Text), head(got), head(g.IDs))
					}
				}
			}
			if bad > 0 {
				t.Errorf("%d of %d lines differ from spm_encode", bad, len(goldens))
			}
		})
	}
}

type hfSPGolden struct {
	Variant string  `json:"variant"`
	Text    string  `json:"text"`
	IDs     []int32 `json:"ids"`
}

// TestSentencePieceJSONGoldens checks tokenizer.json files of the SentencePiece kind
// (Llama's legacy Prepend + Replace layout, two Metaspace pre-tokenizer variants, and one
// without byte fallback or fuse_unk)
// against Hugging Face tokenizers, literal special tokens included.
func TestSentencePieceJSONGoldens(t *testing.T) {
	goldens := readGoldens[hfSPGolden](t, filepath.Join(spDir, "hf_goldens.jsonl.gz"))
	toks := map[string]*Tokenizer{}
	for _, name := range []string{"legacy", "metaspace_first", "metaspace_split", "nofuse"} {
		tok, err := Load(filepath.Join(spDir, name+".tokenizer.json"))
		if err != nil {
			t.Fatal(err)
		}
		toks[name] = tok
	}
	bad := map[string]int{}
	for k, g := range goldens {
		tok := toks[g.Variant]
		if tok == nil {
			t.Fatalf("golden %d: unknown variant %q", k, g.Variant)
		}
		if got := tok.Encode(g.Text); !slices.Equal(got, g.IDs) {
			bad[g.Variant]++
			if bad[g.Variant] <= 3 {
				t.Errorf("%s %q:\n got %v\nwant %v (Hugging Face)", g.Variant, trunc(g.Text), head(got), head(g.IDs))
			}
		}
	}
	if len(bad) > 0 {
		t.Errorf("differences from Hugging Face by variant: %v", bad)
	}
	if toks["legacy"].Fingerprint() == toks["metaspace_first"].Fingerprint() {
		t.Error("variants share a fingerprint")
	}
}
