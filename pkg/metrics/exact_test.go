package metrics

import (
	"math"
	"testing"

	"github.com/cpo-toolchain/cpo/pkg/shard"
)

func TestExactMatch(t *testing.T) {
	var gens []shard.Generation
	for i := 0; i < 40; i++ {
		text := "wrong"
		if i%4 == 0 {
			text = " 42 is the answer. "
		}
		gens = append(gens, shard.Generation{Model: "m", ModelName: "mle", Decoding: "greedy", Text: text, Reference: "42 is the answer.<|endoftext|>"})
	}
	gens = append(gens, shard.Generation{Model: "c", ModelName: "cpo", Decoding: "greedy", Text: "x", Reference: "x"})
	res := ExactMatch(gens, 2000, 1)
	if len(res) != 2 || res[0].ModelName != "mle" || res[1].ModelName != "cpo" {
		t.Fatalf("groups %+v", res)
	}
	if res[0].Value != 0.25 || res[0].N != 40 || !(res[0].Lo < 0.25 && res[0].Hi > 0.25) {
		t.Fatalf("mle exact match %+v, want 0.25 with an interval around it", res[0].Interval)
	}
	if res[1].Value != 1 || !math.IsNaN(res[1].Lo) {
		t.Fatalf("one-item group %+v", res[1].Interval)
	}
	if sameAnswer("a", "b") || !sameAnswer("a\n", " a</s>") {
		t.Fatal("sameAnswer")
	}
}
