package judge

import (
	"fmt"
	"io"

	"github.com/cpo-toolchain/cpo/pkg/shard"
)

// ReadItems reads generation shards (files, directories, globs; none or "-" for stdin) into
// items that remember their file and row.
func ReadItems(args []string, stdin io.Reader) ([]Item, error) {
	r, err := shard.NewReader[shard.Generation](args, stdin)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []Item
	for {
		g, err := r.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		file, row := r.Pos()
		out = append(out, Item{Gen: g, Where: fmt.Sprintf("%s row %d", file, row)})
	}
}

// JoinReferences sets every item's ground truth (Reference, and ReferenceIDs when the
// tokenizers agree) from example shards, by id. A generation whose id has no example, or
// duplicate example ids, is an error naming file and row.
func JoinReferences(items []Item, exampleArgs []string) error {
	r, err := shard.NewReader[shard.Example](exampleArgs, nil)
	if err != nil {
		return err
	}
	defer r.Close()
	refs := map[string]shard.Example{}
	for {
		e, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if _, dup := refs[e.ID]; dup {
			file, row := r.Pos()
			return fmt.Errorf("%s row %d: duplicate example id %q in --references", file, row, e.ID)
		}
		refs[e.ID] = e
	}
	for i := range items {
		g := &items[i].Gen
		e, ok := refs[g.ID]
		if !ok {
			return fmt.Errorf("%s: generation %q has no ground truth: no example with that id in --references", items[i].Where, g.ID)
		}
		g.Reference = e.Response
		if e.Tokenizer == g.Tokenizer {
			g.ReferenceIDs = e.ResponseIDs
		} else {
			g.ReferenceIDs = nil
		}
	}
	return nil
}
