package model

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the user+system CPU time the process has used so far (0 if unknown). On a
// shared machine, CPU time per step varies far less than wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakRSSMB is the process's peak resident set (VmHWM) in MiB, or -1 off Linux. It covers
// everything the process did so far, so run one benchmark per process for a clean figure:
//
//	go test -run '^$' -bench StepTiny -benchtime 10x ./pkg/model
func peakRSSMB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			if err == nil {
				return float64(kb) / 1024
			}
		}
	}
	return -1
}

// benchStep measures one training step (ZeroGrad, Forward, Backward) on B sequences of T
// tokens and reports ms/step, tokens/s, the workspace size and the peak RSS.
func benchStep(b *testing.B, cfg Config, B, T int) { benchStepMixed(b, cfg, B, T, false) }

// benchStepMixed is benchStep with the dense layers in mixed precision (SetMixedBF16) or not.
func benchStepMixed(b *testing.B, cfg Config, B, T int, mixed bool) {
	m, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	m.InitGPT2Style(1)
	m.SetMixedBF16(mixed)
	rng := rand.New(rand.NewPCG(1, 2))
	lens := make([]int, B)
	for i := range lens {
		lens[i] = T
	}
	batch, _ := randomBatch(rng, cfg.VocabSize, lens...)
	N := len(batch.Tokens)
	dlogp := make([]float32, N)
	for i := range dlogp {
		dlogp[i] = -1 / float32(N-B)
	}
	ws := NewWorkspace()
	m.Forward(ws, batch) // allocate the workspace outside the timing
	m.Backward(ws, dlogp)
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		m.ZeroGrad()
		m.Forward(ws, batch)
		m.Backward(ws, dlogp)
	}
	b.StopTimer()
	cpu := (cpuTime() - cpu0).Seconds() / float64(b.N)
	sec := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(sec*1e3, "ms/step")
	b.ReportMetric(cpu*1e3, "cpu-ms/step")
	b.ReportMetric(float64(N)/sec, "tok/s")
	b.ReportMetric(float64(ws.Bytes())/(1<<20), "MiB-workspace")
	b.ReportMetric(float64(8*m.NumParams())/(1<<20), "MiB-params+grads")
	b.ReportMetric(peakRSSMB(), "MiB-peakRSS")
}

// BenchmarkStepTiny: GPT-2 style, 4 layers, 4 heads, width 256, vocab 8192, context 128,
// batch 8×128.
func BenchmarkStepTiny(b *testing.B) {
	benchStep(b, Config{Arch: ArchGPT2, VocabSize: 8192, MaxSeqLen: 128, NLayer: 4, NHead: 4, NKVHead: 4,
		DModel: 256, DFF: 1024, NormEps: 1e-5, TieEmbeddings: true, BOS: -1, EOS: -1}, 8, 128)
}

// BenchmarkStepTinyMixedBF16 is BenchmarkStepTiny with the dense layers in mixed precision.
func BenchmarkStepTinyMixedBF16(b *testing.B) {
	benchStepMixed(b, Config{Arch: ArchGPT2, VocabSize: 8192, MaxSeqLen: 128, NLayer: 4, NHead: 4, NKVHead: 4,
		DModel: 256, DFF: 1024, NormEps: 1e-5, TieEmbeddings: true, BOS: -1, EOS: -1}, 8, 128, true)
}

// BenchmarkStepTinyLlama: the tiny size as Llama with 2 kv heads and an untied head.
func BenchmarkStepTinyLlama(b *testing.B) {
	benchStep(b, Config{Arch: ArchLlama, VocabSize: 8192, MaxSeqLen: 128, NLayer: 4, NHead: 4, NKVHead: 2,
		DModel: 256, DFF: 704, NormEps: 1e-5, RopeTheta: 10000, BOS: -1, EOS: -1}, 8, 128)
}

// BenchmarkStepGPT2Small: GPT-2 small (124M), batch 4×64. Slow: run it alone, once:
//
//	go test -run '^$' -bench StepGPT2Small -benchtime 1x ./pkg/model
func BenchmarkStepGPT2Small(b *testing.B) {
	benchStep(b, Config{Arch: ArchGPT2, VocabSize: 50257, MaxSeqLen: 1024, NLayer: 12, NHead: 12, NKVHead: 12,
		DModel: 768, DFF: 3072, NormEps: 1e-5, TieEmbeddings: true, BOS: 50256, EOS: 50256}, 4, 64)
}

// BenchmarkStepGPT2SmallMixedBF16 is BenchmarkStepGPT2Small with the dense layers in mixed
// precision.
func BenchmarkStepGPT2SmallMixedBF16(b *testing.B) {
	benchStepMixed(b, Config{Arch: ArchGPT2, VocabSize: 50257, MaxSeqLen: 1024, NLayer: 12, NHead: 12, NKVHead: 12,
		DModel: 768, DFF: 3072, NormEps: 1e-5, TieEmbeddings: true, BOS: 50256, EOS: 50256}, 4, 64, true)
}

// BenchmarkDecodeTiny: the tiny GPT-2 config decoding 8 slots through the KV cache, a
// 64-token prefill each, then 64 single-token steps for all slots; reports generated
// tokens/s (prefill included in the time).
func BenchmarkDecodeTiny(b *testing.B) {
	m, err := New(Config{Arch: ArchGPT2, VocabSize: 8192, MaxSeqLen: 128, NLayer: 4, NHead: 4, NKVHead: 4,
		DModel: 256, DFF: 1024, NormEps: 1e-5, TieEmbeddings: true, BOS: -1, EOS: -1})
	if err != nil {
		b.Fatal(err)
	}
	m.InitGPT2Style(1)
	const S, prompt, steps = 8, 64, 64
	rng := rand.New(rand.NewPCG(1, 2))
	slots := make([]int, S)
	prompts := make([][]int32, S)
	for i := range slots {
		slots[i] = i
		for j := 0; j < prompt; j++ {
			prompts[i] = append(prompts[i], int32(rng.IntN(8192)))
		}
	}
	cache := m.NewCache(S, prompt+steps)
	next := make([][]int32, S)
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		for i := range slots {
			cache.Reset(i)
		}
		logits := m.Extend(cache, slots, prompts)
		for s := 0; s < steps; s++ {
			for i := range slots { // greedy
				row := logits[i*8192 : (i+1)*8192]
				best := 0
				for v := range row {
					if row[v] > row[best] {
						best = v
					}
				}
				next[i] = []int32{int32(best)}
			}
			logits = m.Extend(cache, slots, next)
		}
	}
	b.StopTimer()
	sec := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(float64(S*steps)/sec, "gen-tok/s")
}

// BenchmarkDecodeGPT2Small times incremental greedy steps of GPT-2 small (random weights)
// at batch 1 and 16, with float32 weights and with SetBF16Inference, after a 64-token
// prefill; reports ms per step (one new token for every slot) and cpu-ms per step. Slow:
//
//	go test -run '^$' -bench DecodeGPT2Small -benchtime 1x ./pkg/model
func BenchmarkDecodeGPT2Small(b *testing.B) {
	cfg := Config{Arch: ArchGPT2, VocabSize: 50257, MaxSeqLen: 1024, NLayer: 12, NHead: 12, NKVHead: 12,
		DModel: 768, DFF: 3072, NormEps: 1e-5, TieEmbeddings: true, BOS: 50256, EOS: 50256}
	m, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	m.InitGPT2Style(1)
	for _, bf := range []bool{false, true} {
		m.SetBF16Inference(bf)
		for _, S := range []int{1, 16} {
			name := "fp32"
			if bf {
				name = "bf16"
			}
			b.Run(fmt.Sprintf("%s/batch%d", name, S), func(b *testing.B) {
				const prompt, steps = 64, 32
				rng := rand.New(rand.NewPCG(1, 2))
				slots := make([]int, S)
				prompts, next := make([][]int32, S), make([][]int32, S)
				for i := range slots {
					slots[i] = i
					for j := 0; j < prompt; j++ {
						prompts[i] = append(prompts[i], int32(rng.IntN(cfg.VocabSize)))
					}
				}
				cache := m.NewCache(S, prompt+steps+1)
				var el time.Duration
				var cpu time.Duration
				for it := 0; it < b.N; it++ {
					for i := range slots {
						cache.Reset(i)
					}
					logits := m.Extend(cache, slots, prompts)
					t0, c0 := time.Now(), cpuTime()
					for s := 0; s < steps; s++ {
						for i := range slots {
							row := logits[i*cfg.VocabSize : (i+1)*cfg.VocabSize]
							best := 0
							for v := range row {
								if row[v] > row[best] {
									best = v
								}
							}
							next[i] = []int32{int32(best)}
						}
						logits = m.Extend(cache, slots, next)
					}
					el += time.Since(t0)
					cpu += cpuTime() - c0
				}
				b.ReportMetric(el.Seconds()*1e3/float64(b.N*steps), "ms/step")
				b.ReportMetric(cpu.Seconds()*1e3/float64(b.N*steps), "cpu-ms/step")
			})
		}
	}
}

// BenchmarkAttention times causal attention forward+backward on 8 sequences of T tokens
// (GPT-2 tiny heads: 4 × 64) for several row-block sizes; "full" is a single block (the
// whole T×T score matrix).
func BenchmarkAttention(b *testing.B) {
	defer func(rb int) { attnRowBlock = rb }(attnRowBlock)
	a := attnShape{NH: 4, NKV: 4, hd: 64}
	for _, T := range []int{128, 512} {
		for _, rb := range []int{1 << 30, 64, 32} {
			name := fmt.Sprintf("T%d/rows%d", T, rb)
			if rb == 1<<30 {
				name = fmt.Sprintf("T%d/full", T)
			}
			b.Run(name, func(b *testing.B) {
				attnRowBlock = rb
				const S = 8
				N := S * T
				starts := make([]int, S+1)
				for i := range starts {
					starts[i] = i * T
				}
				rng := rand.New(rand.NewPCG(1, 2))
				qkv := make([]float32, N*a.qkvDim())
				for i := range qkv {
					qkv[i] = float32(rng.NormFloat64())
				}
				att, datt := make([]float32, N*a.outDim()), make([]float32, N*a.outDim())
				for i := range datt {
					datt[i] = float32(rng.NormFloat64())
				}
				lse, dqkv := make([]float32, N*a.NH), make([]float32, len(qkv))
				var scratch [][]float32
				b.ResetTimer()
				c0 := cpuTime()
				for i := 0; i < b.N; i++ {
					attentionForward(att, lse, nil, qkv, starts, a, &scratch)
					attentionBackward(dqkv, datt, qkv, lse, nil, starts, a, &scratch)
				}
				b.ReportMetric((cpuTime()-c0).Seconds()*1e3/float64(b.N), "cpu-ms/op")
			})
		}
	}
}
