package embed_test

import (
	"fmt"

	"github.com/cpo-toolchain/cpo/pkg/embed"
)

// The ground truth stays first; the negatives follow by similarity, ties by lower index.
func ExampleRank() {
	fmt.Println(embed.Rank([]float32{1, 0.2, 0.9, 0.2, 0.5}))
	// Output: [0 2 4 1 3]
}
