package embed

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/cpo-toolchain/cpo/pkg/model"
	"github.com/cpo-toolchain/cpo/pkg/shard"
)

type sliceSource struct {
	rows []shard.Candidates
	i    int
}

func (s *sliceSource) Next() (shard.Candidates, error) {
	if s.i >= len(s.rows) {
		return shard.Candidates{}, io.EOF
	}
	s.i++
	r := s.rows[s.i-1]
	// A fresh copy, as a reader would give.
	r.Candidates = slices.Clone(r.Candidates)
	return r, nil
}

func (s *sliceSource) Pos() (string, int64) { return "mem.parquet", int64(s.i - 1) }

func tinyModel(t testing.TB, arch string, v, maxLen int) *model.Model {
	cfg := model.Config{Arch: arch, VocabSize: v, MaxSeqLen: maxLen, NLayer: 2, NHead: 4, NKVHead: 4, DModel: 32, DFF: 64,
		NormEps: 1e-5, RopeTheta: 10000, TieEmbeddings: arch == model.ArchGPT2, BOS: -1, EOS: 1}
	m, err := model.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.InitGPT2Style(7)
	return m
}

func makeRows(n, k, v int, seed uint64) []shard.Candidates {
	rng := rand.New(rand.NewPCG(seed, 2))
	ids := func(n int) []int32 {
		x := make([]int32, n)
		for i := range x {
			x[i] = int32(rng.IntN(v))
		}
		return x
	}
	rows := make([]shard.Candidates, n)
	for i := range rows {
		r := shard.Candidates{ID: fmt.Sprint("r", i), PromptIDs: ids(rng.IntN(6)), Tokenizer: "t"}
		gt := ids(1 + rng.IntN(10))
		r.ResponseIDs = gt
		r.Candidates = []shard.Candidate{{Kind: "gt", IDs: gt}}
		for j := 1; j < k; j++ {
			c := ids(1 + rng.IntN(12))
			if j == 1 {
				c = slices.Clone(gt)
				c[0] = int32((int(c[0]) + 1) % v) // a near copy: high similarity
			}
			r.Candidates = append(r.Candidates, shard.Candidate{Kind: "mn", IDs: c})
		}
		rows[i] = r
	}
	return rows
}

func runEmbed(t *testing.T, rows []shard.Candidates, o Options) ([]shard.Candidates, Stats) {
	t.Helper()
	var out []shard.Candidates
	st, err := Run(context.Background(), &sliceSource{rows: rows}, func(r ...shard.Candidates) error {
		for i := range r {
			if err := r[i].Validate(); err != nil {
				t.Fatal(err)
			}
		}
		out = append(out, r...)
		return nil
	}, o)
	if err != nil {
		t.Fatal(err)
	}
	return out, st
}

// bruteEmbedding runs one candidate alone (no packing) and pools in float64.
func bruteEmbedding(m *model.Model, prompt, ids []int32, pooling string, noPrompt bool) []float64 {
	c := m.Config.DModel
	e := make([]float64, c)
	if len(ids) == 0 {
		return e
	}
	if noPrompt {
		prompt = nil
	}
	seq := append(slices.Clone(prompt), ids...)
	h := m.Hidden(model.NewWorkspace(), model.Pack([][]int32{seq}))
	from := len(prompt)
	if pooling == Last {
		from = len(seq) - 1
	}
	for t := from; t < len(seq); t++ {
		for j := range c {
			e[j] += float64(h[t*c+j]) / float64(len(seq)-from)
		}
	}
	return e
}

func bruteCosine(a, b []float64) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += a[i] * b[i]
		aa += a[i] * a[i]
		bb += b[i] * b[i]
	}
	if aa == 0 || bb == 0 {
		return 0
	}
	return ab / math.Sqrt(aa*bb)
}

func TestRankingAgreesWithBruteForce(t *testing.T) {
	for _, arch := range []string{model.ArchGPT2, model.ArchLlama} {
		m := tinyModel(t, arch, 50, 64)
		rows := makeRows(25, 6, 50, 1)
		rows[3].Candidates[2].IDs = nil // empty: zero embedding, similarity 0
		for _, pooling := range []string{Mean, Last} {
			for _, noPrompt := range []bool{false, true} {
				out, st := runEmbed(t, rows, Options{Model: m, Fingerprint: "fp", Pooling: pooling, NoPrompt: noPrompt, BatchTokens: 50, GroupRows: 7, Workers: 2})
				if st.Rows != 25 || st.Candidates != 150 || st.Empty != 1 {
					t.Fatalf("stats %+v", st)
				}
				for i, r := range out {
					want := RankBy("fp", pooling, noPrompt)
					if r.RankBy != want {
						t.Fatalf("rank_by %q, want %q", r.RankBy, want)
					}
					gt := bruteEmbedding(m, r.PromptIDs, r.Candidates[0].IDs, pooling, noPrompt)
					sims := make([]float64, len(r.Candidates))
					for j, cd := range r.Candidates {
						sims[j] = bruteCosine(bruteEmbedding(m, r.PromptIDs, cd.IDs, pooling, noPrompt), gt)
						if j == 0 {
							sims[j] = 1
						}
						if math.Abs(float64(*cd.Score)-sims[j]) > 1e-4 {
							t.Fatalf("%s %s row %d cand %d: score %g, brute force %g", arch, pooling, i, j, *cd.Score, sims[j])
						}
					}
					// The brute-force ranking: ground truth first, then by similarity, ties by index.
					idx := []int32{1, 2, 3, 4, 5}
					sort.SliceStable(idx, func(a, b int) bool { return sims[idx[a]] > sims[idx[b]] })
					wantRank := append([]int32{0}, idx...)
					if !reflect.DeepEqual(r.Ranking, wantRank) {
						// Allowed only where the brute-force similarities are within float noise.
						for p := 1; p < len(r.Ranking); p++ {
							if sims[r.Ranking[p]] < sims[wantRank[p]]-1e-5 {
								t.Fatalf("%s %s row %d: ranking %v, brute force %v (sims %v)", arch, pooling, i, r.Ranking, wantRank, sims)
							}
						}
					}
				}
			}
		}
	}
}

func TestRankTies(t *testing.T) {
	got := Rank([]float32{0.2, 0.5, 0.9, 0.5, 1, 0.9})
	if want := []int32{0, 4, 2, 5, 1, 3}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Rank %v, want %v", got, want)
	}
	if Cosine([]float32{0, 0}, []float32{1, 0}) != 0 || math.Abs(Cosine([]float32{1, 2}, []float32{2, 4})-1) > 1e-12 {
		t.Fatal("Cosine")
	}
}

func TestWorkersAndEmbeddingsFile(t *testing.T) {
	m := tinyModel(t, model.ArchLlama, 50, 16)
	rows := makeRows(30, 4, 50, 3)
	rows[0].PromptIDs = make([]int32, 14) // prompt+candidate past the context: the prompt's end is kept
	dir := t.TempDir()
	path := filepath.Join(dir, "emb.npy")
	ew, err := NewEmbeddingWriter(path, m.Config.DModel)
	if err != nil {
		t.Fatal(err)
	}
	var want [][]float32
	a, st := runEmbed(t, rows, Options{Model: m, Workers: 1, BatchTokens: 30, Embeddings: func(r *shard.Candidates, e [][]float32) error {
		for _, v := range e {
			want = append(want, slices.Clone(v))
		}
		return ew.Write(r, e)
	}})
	if err := ew.Close(); err != nil {
		t.Fatal(err)
	}
	if st.Truncated == 0 {
		t.Fatal("no candidate cut to the context")
	}
	b, _ := runEmbed(t, rows, Options{Model: m, Workers: 3, BatchTokens: 30})
	if !reflect.DeepEqual(a, b) {
		t.Fatal("1 and 3 workers rank differently")
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mm, c, data, err := ReadNPY(f)
	if err != nil || mm != len(want) || c != m.Config.DModel {
		t.Fatalf("npy %d×%d, %v", mm, c, err)
	}
	for i := range want {
		if !slices.Equal(data[i*c:(i+1)*c], want[i]) {
			t.Fatalf("embedding %d differs", i)
		}
	}
	idx, _ := os.ReadFile(IndexPath(path))
	lines := strings.Split(strings.TrimSpace(string(idx)), "\n")
	if len(lines) != mm || lines[5] != `{"row":1,"id":"r1","candidate":1,"kind":"mn"}` {
		t.Fatalf("index: %d lines, line 5 %s", len(lines), lines[5])
	}
	// The header is numpy's: 128 bytes, shape written at the end.
	raw, _ := os.ReadFile(path)
	if !bytes.Contains(raw[:128], []byte(fmt.Sprintf("'shape': (%d, %d)", mm, c))) || raw[127] != '\n' || len(raw) != 128+4*mm*c {
		t.Fatalf("header %q", raw[:128])
	}
}

func TestBadRows(t *testing.T) {
	m := tinyModel(t, model.ArchGPT2, 50, 64)
	rows := makeRows(3, 3, 50, 4)
	rows[2].Candidates[1].IDs = []int32{60}
	_, err := Run(context.Background(), &sliceSource{rows: rows}, func(...shard.Candidates) error { return nil }, Options{Model: m})
	if err == nil || !strings.Contains(err.Error(), "mem.parquet row 2") || !strings.Contains(err.Error(), "candidate 1 token id 60") {
		t.Fatalf("out of vocabulary: %v", err)
	}
	_, err = Run(context.Background(), &sliceSource{rows: makeRows(2, 3, 50, 4)}, func(...shard.Candidates) error { return nil }, Options{Model: m, Tokenizer: "x"})
	if err == nil || !strings.Contains(err.Error(), "mem.parquet row 0") {
		t.Fatalf("tokenizer: %v", err)
	}
	_, err = Run(context.Background(), &sliceSource{}, nil, Options{Model: m, Pooling: "max"})
	if err == nil {
		t.Fatal("pooling max accepted")
	}
}

func TestRankByScores(t *testing.T) {
	rows := makeRows(4, 4, 50, 5)
	dir := t.TempDir()
	var jl strings.Builder
	var entries []ScoreEntry
	for i, r := range rows {
		for j := range r.Candidates {
			s := float64((i*7+j*3)%5) / 4
			entries = append(entries, ScoreEntry{r.ID, int64(j), s})
			fmt.Fprintf(&jl, `{"id":%q,"candidate":%d,"score":%g}`+"\n", r.ID, j, s)
		}
	}
	jpath := filepath.Join(dir, "s.jsonl")
	os.WriteFile(jpath, []byte(jl.String()), 0o644)
	ppath := filepath.Join(dir, "s.parquet")
	if err := parquet.WriteFile(ppath, entries); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{jpath, ppath} {
		sc, err := LoadScores(p)
		if err != nil {
			t.Fatal(err)
		}
		var out []shard.Candidates
		st, err := RunScores(context.Background(), &sliceSource{rows: rows}, func(r ...shard.Candidates) error { out = append(out, r...); return nil }, sc, "rm")
		if err != nil || st.Rows != 4 || st.Candidates != 16 {
			t.Fatalf("%s: %v %+v", p, err, st)
		}
		for i, r := range out {
			scores := make([]float32, 4)
			for j := range scores {
				scores[j] = float32(float64((i*7+j*3)%5) / 4)
				if *r.Candidates[j].Score != scores[j] {
					t.Fatalf("score %g want %g", *r.Candidates[j].Score, scores[j])
				}
			}
			if !reflect.DeepEqual(r.Ranking, Rank(scores)) || r.RankBy != "score:rm" || r.Validate() != nil {
				t.Fatalf("row %d ranking %v", i, r.Ranking)
			}
		}
	}
	// A missing negative score names the row; a bad line names the line.
	os.WriteFile(jpath, []byte(`{"id":"r0","candidate":1,"score":1}`+"\n"), 0o644)
	sc, _ := LoadScores(jpath)
	_, err := RunScores(context.Background(), &sliceSource{rows: rows}, func(...shard.Candidates) error { return nil }, sc, "rm")
	if err == nil || !strings.Contains(err.Error(), `mem.parquet row 0: no score for row "r0" candidate 2`) {
		t.Fatalf("missing: %v", err)
	}
	os.WriteFile(jpath, []byte(`{"id":"r0","candidate":1,"score":1}`+"\n"+`{"id":"r0","candidate":1,"score":2}`+"\n"), 0o644)
	if _, err := LoadScores(jpath); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("duplicate: %v", err)
	}
	os.WriteFile(jpath, []byte(`{"id":"r0","score":2}`+"\n"), 0o644)
	if _, err := LoadScores(jpath); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("no candidate: %v", err)
	}
}
