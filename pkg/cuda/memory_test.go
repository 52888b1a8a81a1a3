package cuda

import (
	"testing"

	"github.com/cpo-toolchain/cpo/pkg/model"
)

// openLlama3B is OpenLlama-3B's configuration (config.json of openlm-research/open_llama_3b).
var openLlama3B = model.Config{Arch: model.ArchLlama, VocabSize: 32000, MaxSeqLen: 2048, NLayer: 26, NHead: 32, NKVHead: 32,
	DModel: 3200, DFF: 8640, NormEps: 1e-6, RopeTheta: 10000, BOS: 1, EOS: 2}

func TestDeviceBytes(t *testing.T) {
	m := testModel(t, model.ArchGPT2, true)
	p := int64(m.NumParams())
	cfg := m.Config
	train := DeviceBytes(cfg, p, 64, Options{})
	inf := DeviceBytes(cfg, p, 64, Options{Inference: true})
	f32 := DeviceBytes(cfg, p, 64, Options{Precision: Float32})
	if !(inf < train && train < f32) {
		t.Errorf("bf16 inference %d, bf16 training %d, fp32 training %d: want increasing", inf, train, f32)
	}
	// The fixed part: 4+2 bytes of weights, 12 of gradients and moments per parameter.
	if d := DeviceBytes(cfg, p, 0, Options{}); d != 18*p {
		t.Errorf("bf16 training with no tokens: %d bytes, want %d", d, 18*p)
	}
	if d := DeviceBytes(cfg, p, 0, Options{Inference: true}); d != 2*p {
		t.Errorf("bf16 inference with no tokens: %d bytes, want %d", d, 2*p)
	}
	// Activations grow linearly in the token count.
	a1 := DeviceBytes(cfg, p, 640, Options{}) - 18*p
	a2 := DeviceBytes(cfg, p, 1280, Options{}) - 18*p
	if a2 != 2*a1 {
		t.Errorf("activations for 640 and 1280 tokens: %d and %d bytes", a1, a2)
	}
	if DeviceBytes(cfg, p, 8, Options{Precision: "fp16"}) != 0 {
		t.Error("unknown precision gave a size")
	}
}

// llamaParams counts a Llama's parameters as pkg/model lays them out, without allocating.
func llamaParams(c model.Config) int64 {
	C, V, F, hd := int64(c.DModel), int64(c.VocabSize), int64(c.DFF), int64(c.HeadDim())
	per := int64(c.NHead)*hd*C + 2*int64(c.NKVHead)*hd*C + C*int64(c.NHead)*hd + 3*F*C + 2*C
	n := V*C + int64(c.NLayer)*per + C
	if !c.TieEmbeddings {
		n += V * C
	}
	return n
}

// OpenLlama-3B CPO training (policy in bf16 with float32 master weights, gradients and
// AdamW; a frozen bf16 reference) fits an 80 GB card with micro-batches of 2048 tokens
// (e.g. K = 12 candidates of ~170 tokens; gradient accumulation covers larger batches).
func TestOpenLlama3BFits80GB(t *testing.T) {
	small := testModel(t, model.ArchLlama, false)
	if got := llamaParams(small.Config); got != int64(small.NumParams()) {
		t.Fatalf("llamaParams = %d, the model has %d", got, small.NumParams())
	}
	p := llamaParams(openLlama3B)
	const tokens = 2048
	total := DeviceBytes(openLlama3B, p, tokens, Options{}) + DeviceBytes(openLlama3B, p, tokens, Options{Inference: true})
	t.Logf("OpenLlama-3B: %.2fB parameters, policy + reference for %d-token micro-batches: %.1f GB", float64(p)/1e9, tokens, float64(total)/1e9)
	if total > 76e9 { // leave ~4 GB of 80 GB for the context, cuBLAS and fragmentation
		t.Errorf("OpenLlama-3B needs %.1f GB", float64(total)/1e9)
	}
}

// carveActs takes every buffer once, each distinct, of the sizes the kernels index.
func TestCarveActs(t *testing.T) {
	for _, arch := range []string{model.ArchGPT2, model.ArchLlama} {
		c := testModel(t, arch, true).Config
		for _, inference := range []bool{false, true} {
			var sizes []int64
			b := carveActs(c, 10, 2, inference, func(elems, size int64) int {
				sizes = append(sizes, elems*size)
				return len(sizes) // handles 1, 2, ...: 0 means never handed out
			})
			nl := c.NLayer
			if inference {
				nl = 1
			}
			if len(b.la) != nl {
				t.Fatalf("%s inference=%v: %d block slots", arch, inference, len(b.la))
			}
			fc := int64(c.DFF)
			if arch == model.ArchLlama {
				fc *= 2
			}
			qkv := int64((c.NHead + 2*c.NKVHead) * c.HeadDim())
			if sizes[b.la[0].fc-1] != 10*fc*2 || sizes[b.la[0].qkv-1] != 10*qkv*2 || sizes[b.logits-1] != 10*int64(c.VocabSize)*2 {
				t.Errorf("%s: fc %d qkv %d logits %d bytes", arch, sizes[b.la[0].fc-1], sizes[b.la[0].qkv-1], sizes[b.logits-1])
			}
			if sizes[b.lse-1] != 40 || sizes[b.la[0].lse-1] != 40*int64(c.NHead) {
				t.Errorf("%s: lse sizes %d %d", arch, sizes[b.lse-1], sizes[b.la[0].lse-1])
			}
			if inference {
				if b.resL != b.la[0].res || b.D != 0 || b.dres != 0 {
					t.Errorf("%s inference: resL %d res %d, backward buffers %d %d", arch, b.resL, b.la[0].res, b.D, b.dres)
				}
			} else if b.resL == b.la[nl-1].res || b.D == 0 || b.dlnf == 0 {
				t.Errorf("%s training: resL aliases a block input or backward buffers missing", arch)
			}
		}
	}
}
