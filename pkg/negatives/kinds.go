package negatives

import (
	"math"
	"math/rand/v2"
	"slices"
	"sort"
)

// Stream constants: each kind draws from its own PCG stream of the row seed, so that changing
// the count of one kind does not change the negatives of another.
const (
	streamBN = 0x626e_5f73_7472_6561 // "bn_strea"
	streamMN = 0x6d6e_5f73_7472_6561
	streamTN = 0x746e_5f73_7472_6561
	streamAN = 0x616e_5f73_7472_6561
)

// RowSeed derives the seed of the row at 0-based input position index from the run seed
// (splitmix64 of their combination, sign bit cleared). It is what a candidates row records in
// its Seed column.
func RowSeed(seed int64, index int64) int64 {
	z := uint64(seed) + uint64(index+1)*0x9E3779B97F4A7C15
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return int64((z ^ (z >> 31)) &^ (1 << 63))
}

// kindRNG returns the random stream of one kind for a row seed.
func kindRNG(rowSeed int64, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(rowSeed), stream))
}

// body returns the response without a trailing eos.
func body(resp []int32, eos int32) []int32 {
	if n := len(resp); n > 0 && resp[n-1] == eos {
		return resp[:n-1]
	}
	return resp
}

// truncation returns one truncation negative of resp: body[:L] + EOS with L uniform in
// [0, len(body)-1], where body is resp without a trailing EOS. ok is false when the body is empty.
func truncation(rng *rand.Rand, resp []int32, eos int32) (neg []int32, ok bool) {
	b := body(resp, eos)
	if len(b) == 0 {
		return nil, false
	}
	l := rng.IntN(len(b))
	neg = make([]int32, l+1)
	copy(neg, b[:l])
	neg[l] = eos
	return neg, true
}

// pickBN chooses up to n distinct rows of pool (the window, in window order) for row self,
// uniformly without replacement among those whose response is non-empty and not identical to
// own. It draws by rejection (a row drawn twice, empty or self is drawn again; one identical to
// own counts as a redraw) and, after 4n+16 draws without filling n, finishes with a scan of the
// remaining eligible rows, so it always ends. It returns the chosen pool indices, the number of
// identical draws, and the scratch slice for reuse.
func pickBN(rng *rand.Rand, n int, self int, pool [][]int32, own []int32, scratch []int) (chosen []int, identical int, _ []int) {
	scratch = scratch[:0]
	ok := func(j int) bool { return j != self && len(pool[j]) > 0 && !slices.Contains(scratch, j) }
	for tries := 0; len(scratch) < n && tries < 4*n+16; tries++ {
		j := rng.IntN(len(pool))
		if !ok(j) {
			continue
		}
		if slices.Equal(pool[j], own) {
			identical++
			continue
		}
		scratch = append(scratch, j)
	}
	if len(scratch) < n {
		// Few eligible rows: draw the rest uniformly from an explicit list of them.
		have := len(scratch)
		for j := range pool {
			if ok(j) && !slices.Equal(pool[j], own) {
				scratch = append(scratch, j)
			}
		}
		rest := scratch[have:]
		k := min(n-have, len(rest))
		for i := 0; i < k; i++ {
			x := i + rng.IntN(len(rest)-i)
			rest[i], rest[x] = rest[x], rest[i]
		}
		scratch = scratch[:have+k]
	}
	return scratch, identical, scratch
}

// mnEligible returns the range [lo, hi) of response positions that meanfield negatives may
// resample: every position except a trailing EOS, and position 0 when the prompt is empty.
func mnEligible(promptLen int, resp []int32, eos int32) (lo, hi int) {
	hi = len(body(resp, eos))
	if promptLen == 0 {
		lo = 1
	}
	if lo > hi {
		lo = hi
	}
	return lo, hi
}

// mnCount is j = max(1, round(c·E)), at most E.
func mnCount(frac float64, e int) int {
	if e == 0 {
		return 0
	}
	j := int(math.Round(frac * float64(e)))
	return min(max(j, 1), e)
}

// dist is the per-position sampling distribution of one row for meanfield negatives: rows of
// V logits (one per predicted response position, the prediction of response position lo+r is
// row r), turned lazily and in place into cumulative sums of exp((logit - max)/τ).
type dist struct {
	rows []float32 // (R, V)
	v    int
	temp float64
	done []bool
}

// sample draws one token from the distribution of row r.
func (d *dist) sample(rng *rand.Rand, r int) int32 {
	row := d.rows[r*d.v : (r+1)*d.v]
	if !d.done[r] {
		cdf(row, d.temp)
		d.done[r] = true
	}
	u := float32(rng.Float64() * float64(row[d.v-1]))
	// first index whose cumulative sum exceeds u: tokens of zero mass are never chosen.
	i := sort.Search(d.v, func(i int) bool { return row[i] > u })
	if i >= d.v {
		i = d.v - 1
	}
	return int32(i)
}

// cdf replaces logits (length V) by the cumulative sums of exp((logit-max)/temp), accumulated in
// float64. The plain reference of the sampler's arithmetic.
func cdf(row []float32, temp float64) {
	mx := float32(math.Inf(-1))
	for _, x := range row {
		if x > mx {
			mx = x
		}
	}
	var s float64
	for i, x := range row {
		s += math.Exp(float64(x-mx) / temp)
		row[i] = float32(s)
	}
}

// meanfield makes one meanfield negative of resp: j positions of [lo, hi) chosen uniformly
// without replacement, each replaced by a sample of d at that position. It also returns the
// chosen positions (sorted), for tests. pos is scratch.
func meanfield(rng *rand.Rand, d *dist, resp []int32, lo, hi, j int, pos []int) (neg []int32, chosen []int) {
	pos = pos[:0]
	for t := lo; t < hi; t++ {
		pos = append(pos, t)
	}
	for i := 0; i < j; i++ {
		k := i + rng.IntN(len(pos)-i)
		pos[i], pos[k] = pos[k], pos[i]
	}
	chosen = pos[:j]
	slices.Sort(chosen)
	neg = slices.Clone(resp)
	for _, t := range chosen {
		neg[t] = d.sample(rng, t-lo)
	}
	return neg, chosen
}
