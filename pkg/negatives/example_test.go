package negatives_test

import (
	"context"
	"fmt"
	"io"

	"github.com/cpo-toolchain/cpo/pkg/negatives"
	"github.com/cpo-toolchain/cpo/pkg/shard"
)

type rows struct {
	r []shard.Example
	i int
}

func (s *rows) Next() (shard.Example, error) {
	if s.i == len(s.r) {
		return shard.Example{}, io.EOF
	}
	s.i++
	return s.r[s.i-1], nil
}

func (s *rows) Pos() (string, int64) { return "example", int64(s.i - 1) }

// Batch and truncation negatives need no model: each row gets one other row's response and one
// cut of its own response followed by EOS (id 0 here).
func Example() {
	mix, _ := negatives.ParseMix("bn=1,tn=1")
	src := &rows{r: []shard.Example{
		{ID: "a", PromptIDs: []int32{1}, ResponseIDs: []int32{5, 6, 7, 0}, Tokenizer: "t"},
		{ID: "b", PromptIDs: []int32{2}, ResponseIDs: []int32{8, 9, 0}, Tokenizer: "t"},
	}}
	st, _ := negatives.Run(context.Background(), src, func(out ...shard.Candidates) error {
		for _, c := range out {
			for _, cd := range c.Candidates {
				fmt.Print(cd.Kind, len(cd.IDs) > 0, " ")
			}
			fmt.Println(c.ID, c.Seed == negatives.RowSeed(1, map[string]int64{"a": 0, "b": 1}[c.ID]))
		}
		return nil
	}, negatives.Options{Mix: mix, Seed: 1, EOS: 0})
	fmt.Println(st.RowsOut, st.Made)
	// Output:
	// gttrue bntrue tntrue a true
	// gttrue bntrue tntrue b true
	// 2 [2 0 2 0]
}
