package train

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cpo-toolchain/cpo/pkg/model"
	"github.com/cpo-toolchain/cpo/pkg/shard"
)

// tinyCfg is a GPT-2 small enough for unit tests: V 24, C 32, 2 layers, 2 heads, context 24.
var tinyCfg = model.Config{Arch: model.ArchGPT2, VocabSize: 24, MaxSeqLen: 24, NLayer: 2, NHead: 2, NKVHead: 2,
	DModel: 32, DFF: 64, NormEps: 1e-5, TieEmbeddings: true, BOS: 0, EOS: 1}

func tinyModel(t testing.TB, seed uint64) *model.Model {
	t.Helper()
	m, err := model.New(tinyCfg)
	if err != nil {
		t.Fatal(err)
	}
	m.InitGPT2Style(seed)
	return m
}

func cloneModel(m *model.Model) *model.Model { return CloneModel(m) }

// madeUpItems is a small made-up task: the prompt is 2-5 random tokens, the ground truth its
// reverse followed by EOS (1). Negatives, as the paper's: bn another row's answer, mn the
// answer with tokens resampled, tn a strict prefix plus EOS; then more mn. The ranking puts the
// ground truth first, then the others by how many leading tokens they share with it.
func madeUpItems(n, K int, seed uint64) []*Item {
	r := rand.New(rand.NewPCG(seed, 77))
	V := int32(tinyCfg.VocabSize)
	var items []*Item
	var gts [][]int32
	for i := 0; i < n; i++ {
		p := make([]int32, 2+r.IntN(4))
		for j := range p {
			p[j] = 2 + r.Int32N(V-2)
		}
		gt := make([]int32, 0, len(p)+1)
		for j := len(p) - 1; j >= 0; j-- {
			gt = append(gt, p[j])
		}
		gt = append(gt, 1)
		gts = append(gts, gt)
		items = append(items, &Item{ID: fmt.Sprintf("row%d", i), Where: fmt.Sprintf("made-up row %d", i), Prompt: p,
			Conts: [][]int32{gt}, Kinds: []string{shard.KindGT}})
	}
	for i, it := range items {
		gt := gts[i]
		for k := 1; k < K; k++ {
			var c []int32
			kind := shard.KindMN
			switch {
			case k == 1:
				kind, c = shard.KindBN, append([]int32(nil), gts[(i+1)%n]...)
			case k == 2 && len(gt) > 2:
				kind = shard.KindTN
				c = append(append([]int32(nil), gt[:1+r.IntN(len(gt)-2)]...), 1)
			default:
				c = append([]int32(nil), gt...)
				for {
					j := r.IntN(len(c) - 1)
					c[j] = 2 + r.Int32N(V-2)
					if c[j] != gt[j] {
						break
					}
				}
			}
			it.Conts = append(it.Conts, c)
			it.Kinds = append(it.Kinds, kind)
		}
		it.Ranking = rankByPrefix(it.Conts)
	}
	return items
}

func rankByPrefix(conts [][]int32) []int32 {
	common := func(a, b []int32) int {
		n := 0
		for n < len(a) && n < len(b) && a[n] == b[n] {
			n++
		}
		return n
	}
	idx := make([]int32, len(conts))
	for i := range idx {
		idx[i] = int32(i)
	}
	// insertion sort, stable: ground truth first (it shares everything with itself).
	for i := 1; i < len(idx); i++ {
		for j := i; j > 0 && common(conts[idx[j]], conts[0]) > common(conts[idx[j-1]], conts[0]); j-- {
			idx[j], idx[j-1] = idx[j-1], idx[j]
		}
	}
	return idx
}

// candidatesRows turns items into candidates shard rows.
func candidatesRows(items []*Item) []shard.Candidates {
	var rows []shard.Candidates
	for _, it := range items {
		row := shard.Candidates{ID: it.ID, PromptIDs: it.Prompt, ResponseIDs: it.Conts[0], Tokenizer: "made-up", Ranking: it.Ranking}
		for j, c := range it.Conts {
			row.Candidates = append(row.Candidates, shard.Candidate{Kind: it.Kinds[j], IDs: c})
		}
		rows = append(rows, row)
	}
	return rows
}
