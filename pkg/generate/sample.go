package generate

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
)

// SampleParams choose the distribution a token is drawn from, in the order Hugging Face
// transformers applies its logits warpers: temperature, then top-k, then top-p.
//
//   - Temperature > 0 divides the logits: p ∝ exp(logit/Temperature).
//   - TopK > 0 keeps the tokens whose tempered logit is at least the K-th largest (ties at the
//     boundary are kept, as HF's TopKLogitsWarper does); 0 keeps every token.
//   - TopP in (0, 1] keeps, in order of decreasing probability (ties broken by lower id first),
//     every token whose preceding mass is below TopP: the smallest prefix whose mass reaches
//     TopP (HF's TopPLogitsWarper, which always keeps at least one token). The mass is
//     computed after top-k. TopP = 1 keeps every token.
//
// The paper's settings are {Temperature 1, TopK 50, TopP 1} and {Temperature 1, TopK 50,
// TopP 0.7}.
type SampleParams struct {
	Temperature float64
	TopK        int
	TopP        float64
}

// Validate reports a temperature that is not positive and finite, a negative top-k, or a
// top-p outside (0, 1].
func (p SampleParams) Validate() error {
	if !(p.Temperature > 0) || math.IsInf(p.Temperature, 0) {
		return fmt.Errorf("temperature %v must be positive and finite", p.Temperature)
	}
	if p.TopK < 0 {
		return fmt.Errorf("top-k %d must be >= 0 (0 keeps every token)", p.TopK)
	}
	if !(p.TopP > 0 && p.TopP <= 1) {
		return fmt.Errorf("top-p %v must be in (0, 1]", p.TopP)
	}
	return nil
}

// Sampler draws token ids from a logits row (length V) under SampleParams with an explicit
// random source. It holds scratch memory reused across calls, so one Sampler serves one
// goroutine; the zero value is ready to use.
type Sampler struct {
	ids  []int32   // candidate ids, in decreasing logit order once sorted
	prob []float64 // their unnormalised probabilities exp((logit-max)/T)
}

// Sample draws one token id from logits (length V) under p using rng: exactly one call to
// rng.Float64. It panics if p is invalid (see Validate) or logits is empty.
func (s *Sampler) Sample(logits []float32, p SampleParams, rng *rand.Rand) int32 {
	ids, prob := s.Distribution(logits, p)
	u := rng.Float64()
	acc := 0.0
	for i, q := range prob {
		acc += q
		if u < acc {
			return ids[i]
		}
	}
	return ids[len(ids)-1] // u within rounding of 1
}

// Distribution returns the tokens that can be drawn under p and their probabilities
// (summing to 1, float64), in increasing id order; Sample draws by walking this cumulative
// distribution with one uniform number. Both slices belong to the Sampler until its next
// call. It panics if p is invalid or logits is empty.
func (s *Sampler) Distribution(logits []float32, p SampleParams) ([]int32, []float64) {
	if err := p.Validate(); err != nil {
		panic("generate: " + err.Error())
	}
	V := len(logits)
	if V == 0 {
		panic("generate: Sample on an empty logits row")
	}
	invT := 1 / p.Temperature
	s.ids, s.prob = s.ids[:0], s.prob[:0]
	truncated := false
	switch {
	case p.TopK > 0 && p.TopK < V:
		// Keep every token whose logit >= the K-th largest logit (temperature > 0 keeps the
		// order, so selecting on raw logits equals selecting on tempered ones).
		kth := kthLargest(logits, p.TopK, &s.prob)
		s.prob = s.prob[:0]
		for i, l := range logits {
			if l >= kth {
				s.ids = append(s.ids, int32(i))
			}
		}
		truncated = true
	default:
		for i := range logits {
			s.ids = append(s.ids, int32(i))
		}
	}
	if p.TopP < 1 {
		truncated = true
	}
	if truncated {
		slices.SortFunc(s.ids, func(a, b int32) int {
			if c := cmp.Compare(logits[b], logits[a]); c != 0 {
				return c
			}
			return cmp.Compare(a, b)
		})
	}
	mx := math.Inf(-1)
	for _, id := range s.ids {
		mx = max(mx, float64(logits[id]))
	}
	if math.IsInf(mx, 0) || math.IsNaN(mx) {
		panic(fmt.Sprintf("generate: logits row has maximum %v", mx))
	}
	sum := 0.0
	for _, id := range s.ids {
		q := math.Exp((float64(logits[id]) - mx) * invT)
		s.prob = append(s.prob, q)
		sum += q
	}
	if p.TopP < 1 {
		// Keep the tokens whose preceding mass is below TopP (the first one always).
		acc, n := 0.0, 0
		for n < len(s.prob) && (n == 0 || acc < p.TopP*sum) {
			acc += s.prob[n]
			n++
		}
		s.ids, s.prob, sum = s.ids[:n], s.prob[:n], acc
	}
	if truncated {
		// Back to id order, as torch.multinomial over the masked vocabulary draws: the token a
		// draw u picks then moves only when a cumulative boundary crosses u, not whenever two
		// nearly equal tokens swap places in a probability-sorted order (which last-bit logit
		// differences between batch sizes could cause).
		sort.Sort(byID{s.ids, s.prob})
	}
	for i := range s.prob {
		s.prob[i] /= sum
	}
	return s.ids, s.prob
}

// byID sorts candidate ids and their probabilities together by id.
type byID struct {
	ids  []int32
	prob []float64
}

func (b byID) Len() int           { return len(b.ids) }
func (b byID) Less(i, j int) bool { return b.ids[i] < b.ids[j] }
func (b byID) Swap(i, j int) {
	b.ids[i], b.ids[j] = b.ids[j], b.ids[i]
	b.prob[i], b.prob[j] = b.prob[j], b.prob[i]
}

// kthLargest returns the k-th largest value of x (1 <= k <= len(x)) by a min-heap of the k
// largest seen so far; heap is scratch memory.
func kthLargest(x []float32, k int, heap *[]float64) float32 {
	h := (*heap)[:0]
	for _, v := range x[:k] {
		h = append(h, float64(v))
	}
	for i := k/2 - 1; i >= 0; i-- {
		siftDown(h, i)
	}
	for _, v := range x[k:] {
		if f := float64(v); f > h[0] {
			h[0] = f
			siftDown(h, 0)
		}
	}
	*heap = h
	return float32(h[0])
}

func siftDown(h []float64, i int) {
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && h[r] < h[l] {
			m = r
		}
		if h[i] <= h[m] {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// Argmax returns the id of the largest logit, the lowest id among ties (as torch.argmax).
func Argmax(logits []float32) int32 {
	best := 0
	for i, l := range logits {
		if l > logits[best] {
			best = i
		}
	}
	return int32(best)
}

// LogSoftmax returns log softmax(logits)[id] at temperature 1 in float64: logits[id] minus
// the log-sum-exp of the row. This is the per-token term of log Q(y|x).
func LogSoftmax(logits []float32, id int32) float64 {
	mx := math.Inf(-1)
	for _, l := range logits {
		mx = max(mx, float64(l))
	}
	sum := 0.0
	for _, l := range logits {
		sum += math.Exp(float64(l) - mx)
	}
	return float64(logits[id]) - mx - math.Log(sum)
}

// NewRand returns the random source used for one sequence: a PCG generator seeded with
// seed (see RowSeed).
func NewRand(seed int64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))
}

// RowSeed derives the seed of one generated sequence from the global seed, the prompt's row
// id and the sample index: the first 8 bytes (big-endian) of
// SHA-256("cpo-generate-seed-v1\x00" + decimal seed + "\x00" + id + "\x00" + decimal sample),
// with the sign bit cleared. A sequence's random draws therefore depend only on these three
// values, never on batching, worker count or the order rows are processed in.
func RowSeed(seed int64, id string, sample int) int64 {
	h := sha256.New()
	fmt.Fprintf(h, "cpo-generate-seed-v1\x00%d\x00%s\x00%d", seed, id, sample)
	return int64(binary.BigEndian.Uint64(h.Sum(nil)) &^ (1 << 63))
}
