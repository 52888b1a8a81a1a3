package negatives

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/cpo-toolchain/cpo/pkg/shard"
)

// Kind indexes the four kinds of synthetic negatives, in the canonical order in which they
// appear in a candidates row (after the ground truth).
type Kind int

// The kinds of negatives of the paper's section 4.2.
const (
	BN Kind = iota // batch negatives: other rows' continuations
	MN             // meanfield negatives: token-level resampling of the ground truth
	TN             // truncation negatives: a strict prefix of the ground truth plus EOS
	AN             // autoregressive negatives: top-k samples from the reference model
	numKinds
)

// kindNames are the shard kind strings of BN, MN, TN, AN.
var kindNames = [numKinds]string{shard.KindBN, shard.KindMN, shard.KindTN, shard.KindAN}

// String returns the shard kind name ("bn", "mn", "tn", "an").
func (k Kind) String() string {
	if k < 0 || k >= numKinds {
		return fmt.Sprintf("Kind(%d)", int(k))
	}
	return kindNames[k]
}

// MaxPerKind bounds the count of one kind in a mix.
const MaxPerKind = 1024

// Mix is how many negatives of each kind every row gets, indexed by Kind. K, the number of
// candidates of a row, is 1 + Total().
type Mix [numKinds]int

// Total is the number of negatives per row.
func (m Mix) Total() int {
	n := 0
	for _, c := range m {
		n += c
	}
	return n
}

// String writes the mix in ParseMix's syntax, kinds in canonical order, zero counts left out.
func (m Mix) String() string {
	var parts []string
	for k, c := range m {
		if c > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", kindNames[k], c))
		}
	}
	return strings.Join(parts, ",")
}

// MixN is the paper's MixN: 3 batch, 5 meanfield and 3 truncation negatives (K = 12).
var MixN = Mix{BN: 3, MN: 5, TN: 3}

// ParseMix parses a mix such as "bn=3,mn=5,tn=3" (the paper's MixN) or "an=11". Kind names are
// case-insensitive; each kind may appear once; counts are integers in [0, MaxPerKind]; the total
// must be at least 1. "mixn" alone means MixN.
func ParseMix(s string) (Mix, error) {
	var m Mix
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, "mixn") {
		return MixN, nil
	}
	if s == "" {
		return m, fmt.Errorf("empty mix: want e.g. bn=3,mn=5,tn=3")
	}
	seen := [numKinds]bool{}
	for _, part := range strings.Split(s, ",") {
		name, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return m, fmt.Errorf("mix %q: %q is not kind=count (kinds: bn, mn, tn, an)", s, part)
		}
		k := Kind(-1)
		for i, kn := range kindNames {
			if strings.EqualFold(strings.TrimSpace(name), kn) {
				k = Kind(i)
			}
		}
		if k < 0 {
			return m, fmt.Errorf("mix %q: unknown kind %q (kinds: bn, mn, tn, an)", s, strings.TrimSpace(name))
		}
		if seen[k] {
			return m, fmt.Errorf("mix %q: kind %s given twice", s, k)
		}
		seen[k] = true
		n, err := strconv.Atoi(strings.TrimSpace(val))
		if err != nil || n < 0 || n > MaxPerKind {
			return m, fmt.Errorf("mix %q: count of %s must be an integer in [0, %d], got %q", s, k, MaxPerKind, val)
		}
		m[k] = n
	}
	if m.Total() == 0 {
		return m, fmt.Errorf("mix %q asks for no negatives", s)
	}
	return m, nil
}
