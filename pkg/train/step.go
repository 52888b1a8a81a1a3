package train

import (
	"fmt"

	"github.com/cpo-toolchain/cpo/pkg/loss"
	"github.com/cpo-toolchain/cpo/pkg/model"
)

// Objective says what a batch's loss is.
type Objective struct {
	Name  string  // one of Objectives
	Beta  float64 // the reward scale of cpo, cpo-rank and dpo (the paper: 5)
	Alpha float64 // weight of cpo in mle+cpo
	// MLEPrompt trains mle on every position of the sequence (prompt included: whole documents)
	// rather than on the response only.
	MLEPrompt bool
}

// contrastive reports whether the objective compares candidates (and needs reference log-probs).
func (o Objective) contrastive() bool { return o.Name != MLE }

// Micro is the result of one micro-batch: its contribution to the batch loss (already divided
// by the batch's normalisers), the metrics of its examples and the tokens it ran.
type Micro struct {
	Loss    float64
	Stats   loss.Stats
	Tokens  int // tokens run through the policy
	RefRuns int // tokens run through the reference model
	// Truncated counts sequences cut to the model's context.
	Truncated int
}

// Stepper runs micro-batches: forward of the reference (when its log-probs are not
// precomputed) and of the policy over one packed batch of every candidate of the items, the
// objective on the sequence log-probs, and the policy's backward. The passes run on the
// policy's and the reference's engines (Engine); its buffers are reused.
type Stepper struct {
	// Policy is the host model of the policy (its configuration builds the sequences).
	Policy *model.Model
	// Ref is the frozen reference model; nil when every item carries precomputed RefLogp.
	Ref *model.Model
	Obj Objective

	pol, ref Engine           // the passes of Policy and Ref (ref nil when Ref is)
	ws       *model.Workspace // the CPU engines' shared workspace (nil on other devices)
	dlogp    []float32
}

// NewStepper returns a Stepper on the CPU with its own workspace (shared by the policy's and
// the reference's passes).
func NewStepper(policy, ref *model.Model, obj Objective) *Stepper {
	ws := model.NewWorkspace()
	st := &Stepper{Policy: policy, Ref: ref, Obj: obj, ws: ws, pol: NewCPUEngine(policy, ws, Hyper{}, true)}
	if ref != nil {
		st.ref = NewCPUEngine(ref, ws, Hyper{}, true)
	}
	return st
}

// NewStepperOn returns a Stepper whose passes run on the engines pol (of policy) and ref (of
// the reference model; nil with ref nil).
func NewStepperOn(policy, ref *model.Model, pol, refEng Engine, obj Objective) *Stepper {
	st := &Stepper{Policy: policy, Ref: ref, Obj: obj, pol: pol, ref: refEng}
	if c, ok := pol.(*CPUEngine); ok {
		st.ws = c.WS
	}
	return st
}

// seqsOf builds the sequences of items: every candidate for a contrastive objective, the
// ground truth alone for mle.
func (st *Stepper) seqsOf(items []*Item) (seqs []Seq, truncated int) {
	cfg := st.Policy.Config
	for _, it := range items {
		n := it.K()
		if !st.Obj.contrastive() {
			n = 1
		}
		for j := 0; j < n; j++ {
			s, tr := BuildSeq(it.Prompt, it.Conts[j], cfg.BOS, cfg.MaxSeqLen)
			if tr {
				truncated++
			}
			seqs = append(seqs, s)
		}
	}
	return seqs, truncated
}

// seqLogps sums logp over each sequence's continuation positions (in float64, in order).
func seqLogps(logp []float32, b model.Batch, seqs []Seq) []float64 {
	out := make([]float64, len(seqs))
	for i, s := range seqs {
		base := b.Starts[i]
		var sum float64
		for t := s.Start - 1; t < len(s.Tokens)-1; t++ {
			sum += float64(logp[base+t])
		}
		out[i] = sum
	}
	return out
}

// MLETokens is the number of positions the mle term of the objective trains for items (the
// normaliser of the token mean over a batch).
func (st *Stepper) MLETokens(items []*Item) int {
	seqs, _ := (&Stepper{Policy: st.Policy, Obj: Objective{Name: MLE}}).seqsOf(items)
	n := 0
	for _, s := range seqs {
		if st.Obj.MLEPrompt {
			n += len(s.Tokens) - 1
		} else {
			n += len(s.Tokens) - s.Start
		}
	}
	return n
}

// RefLogps returns the reference log-probabilities of every candidate of items (one slice per
// item), from the reference model, running it over the same packed batch the policy sees.
func (st *Stepper) RefLogps(items []*Item) ([][]float64, error) {
	seqs, _ := st.seqsOf(items)
	return st.refLogps(items, seqs, packSeqs(seqs))
}

func packSeqs(seqs []Seq) model.Batch {
	toks := make([][]int32, len(seqs))
	for i, s := range seqs {
		toks[i] = s.Tokens
	}
	return model.Pack(toks)
}

func (st *Stepper) refLogps(items []*Item, seqs []Seq, b model.Batch) ([][]float64, error) {
	logp, err := st.ref.Forward(b)
	if err != nil {
		return nil, fmt.Errorf("%s: reference model: %w", items[0].Where, err)
	}
	all := seqLogps(logp, b, seqs)
	out := make([][]float64, len(items))
	k := 0
	for i, it := range items {
		out[i] = all[k : k+it.K()]
		k += it.K()
	}
	return out, nil
}

// Accumulate runs one micro-batch of items and adds the gradient of its share of the batch
// loss to the policy's Param.Grad. The batch loss is
//
//	mle:      -sum of logp over the trained positions of the batch / mleNorm
//	cpo, cpo-rank, dpo:   sum over the batch's examples of the per-example loss / nBatch
//	mle+cpo:  the mle term + Alpha * the cpo term
//
// where nBatch is the number of examples and mleNorm the number of trained positions of the
// whole batch (MLETokens), so micro-batches of one batch add up to the batch's mean.
func (st *Stepper) Accumulate(items []*Item, nBatch int, mleNorm float64) (Micro, error) {
	var out Micro
	seqs, tr := st.seqsOf(items)
	out.Truncated = tr
	b := packSeqs(seqs)
	if err := st.Policy.CheckBatch(b); err != nil {
		return out, fmt.Errorf("%s: %w", items[0].Where, err)
	}
	contrastive := st.Obj.contrastive()
	var sref [][]float64
	if contrastive {
		if st.Ref != nil {
			var err error
			if sref, err = st.refLogps(items, seqs, b); err != nil {
				return out, err
			}
			out.RefRuns = len(b.Tokens)
		} else {
			for _, it := range items {
				if it.RefLogp == nil {
					return out, fmt.Errorf("%s: row %q has no precomputed ref_logp and no reference model is loaded", it.Where, it.ID)
				}
				sref = append(sref, it.RefLogp)
			}
		}
	}
	logp, err := st.pol.Forward(b)
	if err != nil {
		return out, fmt.Errorf("%s: %w", items[0].Where, err)
	}
	out.Tokens = len(b.Tokens)
	N := len(b.Tokens)
	if cap(st.dlogp) < N {
		st.dlogp = make([]float32, N)
	}
	dlogp := st.dlogp[:N]
	clear(dlogp)

	// The mle term: on the ground truth's sequences (every sequence when the objective is mle).
	if st.Obj.Name == MLE || st.Obj.Name == MLECPO {
		inv := float32(1 / mleNorm)
		var sum float64
		seqIdx := 0
		for _, it := range items {
			s := seqs[seqIdx]
			base := b.Starts[seqIdx]
			from := s.Start - 1
			if st.Obj.MLEPrompt {
				from = 0
			}
			for t := from; t < len(s.Tokens)-1; t++ {
				sum += float64(logp[base+t])
				dlogp[base+t] = -inv
			}
			if contrastive {
				seqIdx += it.K()
			} else {
				seqIdx++
			}
		}
		out.Loss -= sum / mleNorm
	}

	if contrastive {
		s := seqLogps(logp, b, seqs)
		scale := 1 / float64(nBatch)
		weight := 1.0
		if st.Obj.Name == MLECPO {
			weight = st.Obj.Alpha
		}
		k := 0
		for i, it := range items {
			K := it.K()
			si, ri := s[k:k+K], sref[i]
			g := make([]float64, K)
			var L float64
			switch st.Obj.Name {
			case CPO, MLECPO:
				L = loss.CPO(si, ri, st.Obj.Beta, g)
			case CPORank:
				L = loss.RankedCPO(si, ri, it.Ranking, st.Obj.Beta, g)
			case DPO:
				L, g[0], g[1] = loss.DPO(si[0], si[1], ri[0], ri[1], st.Obj.Beta)
			}
			out.Loss += weight * scale * L
			out.Stats.Add(si, ri, it.Kinds, st.Obj.Beta)
			for j := 0; j < K; j++ {
				q := seqs[k+j]
				base := b.Starts[k+j]
				gj := float32(weight * scale * g[j])
				for t := q.Start - 1; t < len(q.Tokens)-1; t++ {
					dlogp[base+t] += gj
				}
			}
			k += K
		}
	}
	if !loss.Finite(out.Loss) {
		return out, nil // the caller decides; no backward on a non-finite loss
	}
	if err := st.pol.Backward(dlogp); err != nil {
		return out, fmt.Errorf("%s: %w", items[0].Where, err)
	}
	return out, nil
}
