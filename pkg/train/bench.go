package train

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cpo-toolchain/cpo/pkg/model"
)

// BenchConfig is a training-step benchmark on random tokens.
type BenchConfig struct {
	Objective string // mle or a contrastive objective (cpo, cpo-rank, dpo, mle+cpo)
	Batch     int    // examples per step
	K         int    // candidates per example (contrastive objectives; dpo uses 2)
	SeqLen    int    // tokens per sequence: the first half prompt, the rest continuation
	// MLEPrompt: mle's loss covers every position (as nanoGPT and llm.c time a step), not
	// only the continuation half (then the lm head's backward pass skips the prompt rows).
	MLEPrompt  bool
	MicroBatch int  // examples per forward/backward (0: Batch)
	Steps      int  // timed steps
	Warmup     int  // untimed steps first
	RefPass    bool // run the reference model too (otherwise reference log-probs are precomputed)
	Seed       uint64
	Device     DeviceConfig // where the models run (zero: the CPU)
}

// BenchResult is what Bench measured.
type BenchResult struct {
	StepMS              []float64 // every timed step, ms, sorted ascending
	Median, Min, Max    float64   // ms per step
	Tokens              int       // policy tokens per step
	TokensPerSec        float64   // at the median step time
	GFLOPs              float64   // model FLOPs per step / 1e9 (see FLOPsPerToken)
	GFLOPsPerSec        float64   // at the median
	WorkspaceBytes      int64     // the CPU workspace (0 on a GPU)
	PeakRSSBytes        int64     // the process's peak resident set (Linux VmHWM), 0 if unknown
	Params              int
	ReferencePassTokens int
	Device              string // Engine.Device of the policy
}

// FLOPsPerToken is the usual estimate of training FLOPs per token of a decoder (forward +
// backward): 6 per parameter (the tied GPT-2 embedding counted once, as the lm head's matrix
// product) plus the attention scores and values, 6*L*C*T for causal attention over a sequence
// of T tokens (half of PaLM's 12*L*C*T, which counts the full T x T square).
func FLOPsPerToken(cfg model.Config, params, T int) float64 {
	return 6*float64(params) + 6*float64(cfg.NLayer)*float64(cfg.DModel)*float64(T)
}

// Bench times full training steps (forward, objective, backward, clipping, AdamW) of m on
// random tokens, after warm-up. m is trained in place (with a tiny learning rate).
func Bench(ctx context.Context, m *model.Model, bc BenchConfig) (BenchResult, error) {
	var res BenchResult
	tr, err := benchTrainer(m, bc)
	if err != nil {
		return res, err
	}
	defer tr.Close()
	res.Device = tr.Engine.Device()
	for i := 0; i < bc.Warmup+bc.Steps; i++ {
		start := time.Now()
		sr, err := tr.TrainStep(ctx)
		if err != nil {
			return res, err
		}
		if i >= bc.Warmup {
			res.StepMS = append(res.StepMS, float64(time.Since(start).Microseconds())/1000)
		}
		res.Tokens, res.ReferencePassTokens = sr.Tokens, sr.RefTokens
	}
	sort.Float64s(res.StepMS)
	n := len(res.StepMS)
	res.Min, res.Max = res.StepMS[0], res.StepMS[n-1]
	res.Median = res.StepMS[n/2]
	if n%2 == 0 {
		res.Median = (res.StepMS[n/2-1] + res.StepMS[n/2]) / 2
	}
	res.Params = m.NumParams()
	res.TokensPerSec = float64(res.Tokens) / (res.Median / 1000)
	res.GFLOPs = FLOPsPerToken(m.Config, res.Params, bc.SeqLen) * float64(res.Tokens) / 1e9
	res.GFLOPsPerSec = res.GFLOPs / (res.Median / 1000)
	if tr.Stepper.ws != nil {
		res.WorkspaceBytes = tr.Stepper.ws.Bytes()
	}
	res.PeakRSSBytes = peakRSS()
	return res, nil
}

// Print writes the result like llm.c's trainer reports.
func (r BenchResult) Print(w io.Writer, name string) {
	fmt.Fprintf(w, "%s: %d params, %d tokens/step: %.1f ms/step (median; min %.1f, max %.1f over %d steps), %.0f tokens/s, %.1f GFLOP/s",
		name, r.Params, r.Tokens, r.Median, r.Min, r.Max, len(r.StepMS), r.TokensPerSec, r.GFLOPsPerSec)
	if r.ReferencePassTokens > 0 {
		fmt.Fprintf(w, " (plus a reference pass over %d tokens)", r.ReferencePassTokens)
	}
	if r.Device != "" && r.Device != DeviceCPU {
		fmt.Fprintf(w, " on %s", r.Device)
	}
	if r.WorkspaceBytes > 0 {
		fmt.Fprintf(w, ", workspace %.1f MiB", float64(r.WorkspaceBytes)/(1<<20))
	}
	if r.PeakRSSBytes > 0 {
		fmt.Fprintf(w, ", peak RSS %.1f MiB", float64(r.PeakRSSBytes)/(1<<20))
	}
	fmt.Fprintln(w)
}

// peakRSS reads VmHWM from /proc/self/status (Linux), else the Go runtime's Sys.
func peakRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
				fields := strings.Fields(v)
				if len(fields) >= 1 {
					if kb, err := strconv.ParseInt(fields[0], 10, 64); err == nil {
						return kb << 10
					}
				}
			}
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.Sys)
}

// benchTrainer builds a trainer over random items for bc.
func benchTrainer(m *model.Model, bc BenchConfig) (*Trainer, error) {
	if bc.Batch <= 0 || bc.SeqLen < 2 || bc.Steps <= 0 {
		return nil, fmt.Errorf("bench: need batch > 0, seq-len >= 2 and steps > 0")
	}
	if bc.SeqLen > m.Config.MaxSeqLen {
		return nil, fmt.Errorf("bench: seq-len %d exceeds the model's context %d", bc.SeqLen, m.Config.MaxSeqLen)
	}
	K := bc.K
	switch {
	case bc.Objective == MLE:
		K = 1
	case bc.Objective == DPO:
		K = 2
	case K < 2:
		return nil, fmt.Errorf("bench: %s needs K >= 2", bc.Objective)
	}
	r := rand.New(rand.NewPCG(bc.Seed, 1))
	V := int32(m.Config.VocabSize)
	rnd := func(n int) []int32 {
		x := make([]int32, n)
		for i := range x {
			x[i] = r.Int32N(V)
		}
		return x
	}
	const fp = "bench"
	items := make([]*Item, bc.Batch)
	for i := range items {
		it := &Item{ID: strconv.Itoa(i), Where: "bench row " + strconv.Itoa(i), Prompt: rnd(bc.SeqLen / 2)}
		for j := 0; j < K; j++ {
			it.Conts = append(it.Conts, rnd(bc.SeqLen-bc.SeqLen/2))
			it.Kinds = append(it.Kinds, "mn")
			it.Ranking = append(it.Ranking, int32(j))
		}
		it.Kinds[0] = "gt"
		if !bc.RefPass && K > 1 {
			it.RefLogp, it.RefModel = make([]float64, K), fp
			for j := range it.RefLogp {
				it.RefLogp[j] = -float64(bc.SeqLen) * 9
			}
		}
		items[i] = it
	}
	cfg := Config{Objective: Objective{Name: bc.Objective, Beta: 5, Alpha: 1, MLEPrompt: bc.MLEPrompt}, Batch: bc.Batch, MicroBatch: bc.MicroBatch,
		Steps: bc.Warmup + bc.Steps, LR: 1e-7, WeightDecay: 0.05, Clip: 1, Seed: bc.Seed, Device: bc.Device}
	return New(cfg, m, fp, items)
}
