package optim

import (
	"testing"

	"github.com/cpo-toolchain/cpo/pkg/model"
)

// BenchmarkAdamW steps 16M parameters (a tenth of GPT-2 small) and reports GB/s of parameter,
// gradient and moment traffic (7 float32 reads and writes per element).
func BenchmarkAdamW(b *testing.B) {
	const n = 16 << 20
	p := &model.Param{Data: make([]float32, n), Grad: make([]float32, n), Decay: true}
	for i := range p.Grad {
		p.Grad[i] = float32(i%7) - 3
	}
	o := NewAdamW([]*model.Param{p}, 0.9, 0.999, 1e-8, 0.05)
	b.SetBytes(7 * 4 * n)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		o.Step(1e-5)
	}
}

func BenchmarkGlobalNorm(b *testing.B) {
	const n = 16 << 20
	p := &model.Param{Grad: make([]float32, n)}
	b.SetBytes(4 * n)
	for i := 0; i < b.N; i++ {
		GlobalNorm([]*model.Param{p})
	}
}
