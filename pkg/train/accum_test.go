package train

import (
	"math"
	"testing"
)

// One optimizer step's gradient does not depend on how the batch is split into micro-batches:
// micro-batches of 1, 5 (a short last one) and 8 of a batch of 64 give the gradient of one pass, to float32 rounding,
// for every objective (mle normalises by the batch's trained tokens, the contrastive objectives
// by the batch's examples).
func TestMicroBatchesGiveTheBatchGradient(t *testing.T) {
	for _, obj := range []string{MLE, CPO, CPORank, MLECPO, DPO} {
		K := 4
		if obj == DPO {
			K = 2
		}
		items := madeUpItems(64, K, 21)
		grad := func(micro int) ([]float32, float64) {
			cfg := Config{Objective: Objective{Name: obj, Beta: 3, Alpha: 0.5}, Batch: len(items), MicroBatch: micro, Steps: 1, LR: 1e-3, Seed: 4}
			tr := newTrainer(t, cfg, tinyModel(t, 8), items)
			tr.Policy.ZeroGrad()
			norm := float64(tr.Stepper.MLETokens(items))
			var L float64
			for lo := 0; lo < len(items); lo += micro {
				mb, err := tr.Stepper.Accumulate(items[lo:min(lo+micro, len(items))], len(items), norm)
				if err != nil {
					t.Fatal(err)
				}
				L += mb.Loss
			}
			return append([]float32(nil), tr.Policy.GradArena()...), L
		}
		want, wantL := grad(len(items))
		var scale float64
		for _, g := range want {
			scale = max(scale, math.Abs(float64(g)))
		}
		for _, micro := range []int{1, 5, 8} {
			got, L := grad(micro)
			if math.Abs(L-wantL) > 1e-6*math.Abs(wantL) {
				t.Errorf("%s micro %d: loss %v, one pass %v", obj, micro, L, wantL)
			}
			for i := range got {
				if d := math.Abs(float64(got[i] - want[i])); d > 1e-5*scale {
					t.Errorf("%s micro %d: grad[%d] = %v, one pass %v", obj, micro, i, got[i], want[i])
					break
				}
			}
		}
	}
}
