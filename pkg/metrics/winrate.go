package metrics

import (
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/cpo-toolchain/cpo/pkg/shard"
)

// Outcomes of a judgment (shard.Judgment.Outcome).
const (
	Win     = "win"
	Loss    = "loss"
	Tie     = "tie"
	Invalid = "invalid"
)

// Metric names written into score shards.
const (
	MetricWinRate     = "win_rate"
	MetricTieRate     = "tie_rate"
	MetricInvalidRate = "invalid_rate"
	MetricWinRateDiff = "win_rate_diff"
	MetricReverseKL   = "reverse_kl"
	MetricNLL         = "nll"
)

// OutcomeValue is a judgment's contribution to the win rate: win 1, tie 1/2, loss 0. A tie
// (the two presentation orders disagree) is the judge saying "no preference", so it counts as
// half a win, as in the usual treatment of draws. ok is false for "invalid" (a verdict missing
// or unparsed), which is left out of the win rate and counted in the invalid rate instead.
func OutcomeValue(outcome string) (v float64, ok bool, err error) {
	switch outcome {
	case Win:
		return 1, true, nil
	case Tie:
		return 0.5, true, nil
	case Loss:
		return 0, true, nil
	case Invalid:
		return 0, false, nil
	}
	return 0, false, fmt.Errorf("unknown outcome %q (want win, loss, tie or invalid)", outcome)
}

// Group identifies one model under one decoding configuration.
type Group struct {
	Model     string // fingerprint
	ModelName string // human label as recorded by cpo-generate
	Decoding  string
}

func (g Group) String() string { return g.Label() + " / " + g.Decoding }

// Label is the model's display name: the last path element of ModelName (so "runs/wise-a0.3/"
// reads "wise-a0.3"), or the first 12 characters of the fingerprint when there is no name.
func (g Group) Label() string { return ModelLabel(g.ModelName, g.Model) }

// ModelLabel is Group.Label for a name and fingerprint.
func ModelLabel(name, fingerprint string) string {
	if n := filepath.Base(strings.TrimRight(name, "/")); name != "" && n != "." && n != "/" {
		return n
	}
	if len(fingerprint) > 12 {
		return fingerprint[:12]
	}
	return fingerprint
}

var alphaRe = regexp.MustCompile(`^(.+)-a([0-9]+(?:\.[0-9]+)?|\.[0-9]+)$`)

// ParseAlpha splits a model label of the form "<base>-a<alpha>" (for example "wise-a0.3",
// "mixnr-a0", "bnr-a0.70"), the naming convention for WISE-FT weight-space ensembles
// θ = α θ_MLE + (1-α) θ_CPO, into its base name and α. ok is false for other labels.
func ParseAlpha(label string) (base string, alpha float64, ok bool) {
	m := alphaRe.FindStringSubmatch(label)
	if m == nil {
		return label, math.NaN(), false
	}
	a, err := strconv.ParseFloat(m[2], 64)
	if err != nil {
		return label, math.NaN(), false
	}
	return m[1], a, true
}

// Judged is a judgment with where it was read from ("file row N"), for error messages.
type Judged struct {
	shard.Judgment
	Where string
}

// WinRate is the summary of one group's judgments.
type WinRate struct {
	Group
	// WinRate is the mean of OutcomeValue over the valid judgments; TieRate the fraction of
	// ties among them; InvalidRate the fraction of invalid judgments among all.
	WinRate, TieRate, InvalidRate Interval
	Wins, Ties, Losses, Invalid   int
	Judge, Template               string
}

// Diff is a paired difference of win rates: Model minus Baseline under the same decoding,
// over the (prompt id, sample) items that both have a valid judgment for.
type Diff struct {
	Group
	Baseline Group
	Interval
}

// item is one judgment's key and value inside a group.
type item struct {
	key     string // id + "\x00" + sample
	value   float64
	valid   bool
	tie     bool
	invalid bool
}

type groupData struct {
	g               Group
	items           []item
	byKey           map[string]int
	judge, template string
}

// collect groups judgments in order of first appearance, rejecting duplicates and groups that
// mix judges or templates.
func collect(js []Judged) ([]*groupData, error) {
	var order []*groupData
	groups := map[Group]*groupData{}
	for _, j := range js {
		g := Group{j.Model, j.ModelName, j.Decoding}
		gd := groups[g]
		if gd == nil {
			gd = &groupData{g: g, byKey: map[string]int{}, judge: j.Judge, template: j.Template}
			groups[g] = gd
			order = append(order, gd)
		}
		if j.Judge != gd.judge || j.Template != gd.template {
			return nil, fmt.Errorf("%s: %s was judged by %q with template %q here but by %q with %q before; score different judges separately",
				j.Where, g, j.Judge, j.Template, gd.judge, gd.template)
		}
		v, ok, err := OutcomeValue(j.Outcome)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", j.Where, err)
		}
		key := j.ID + "\x00" + strconv.Itoa(int(j.Sample))
		if _, dup := gd.byKey[key]; dup {
			return nil, fmt.Errorf("%s: duplicate judgment of %s for prompt %q sample %d", j.Where, g, j.ID, j.Sample)
		}
		gd.byKey[key] = len(gd.items)
		gd.items = append(gd.items, item{key: key, value: v, valid: ok, tie: j.Outcome == Tie, invalid: !ok})
	}
	return order, nil
}

// WinRates summarises judgments per group (model, decoding), in order of first appearance,
// with b bootstrap resamples seeded by seed. Duplicate judgments (same group, id and sample),
// unknown outcomes and groups mixing judges or templates are errors naming where.
func WinRates(js []Judged, b int, seed uint64) ([]WinRate, error) {
	groups, err := collect(js)
	if err != nil {
		return nil, err
	}
	out := make([]WinRate, 0, len(groups))
	for _, gd := range groups {
		w := WinRate{Group: gd.g, Judge: gd.judge, Template: gd.template}
		var vals, ties, invalid []float64
		for _, it := range gd.items {
			switch {
			case it.invalid:
				w.Invalid++
				invalid = append(invalid, 1)
				continue
			case it.tie:
				w.Ties++
			case it.value == 1:
				w.Wins++
			default:
				w.Losses++
			}
			invalid = append(invalid, 0)
			vals = append(vals, it.value)
			ties = append(ties, b2f(it.tie))
		}
		name := gd.g.Model + "\x00" + gd.g.ModelName + "\x00" + gd.g.Decoding
		w.WinRate = BootstrapMean(vals, b, NewRand(seed, "win\x00"+name))
		w.TieRate = BootstrapMean(ties, b, NewRand(seed, "tie\x00"+name))
		w.InvalidRate = BootstrapMean(invalid, b, NewRand(seed, "invalid\x00"+name))
		out = append(out, w)
	}
	return out, nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// MatchModel reports whether a model (name, fingerprint) is the one a user named: its label,
// its full ModelName, or a prefix of at least 8 characters of its fingerprint.
func MatchModel(want, name, fingerprint string) bool {
	return want != "" && (want == ModelLabel(name, fingerprint) || want == name ||
		(len(want) >= 8 && strings.HasPrefix(fingerprint, want)))
}

// PairedDiffs returns, for every group other than the baseline's that shares a decoding with
// the baseline model (named as MatchModel accepts), the paired difference of win rates
// (model minus baseline) over the (id, sample) items both judged validly, with a paired
// bootstrap interval: the per-item differences are resampled together. The value can differ
// slightly from the difference of the two win rates when the invalid items differ. An error
// says when no group matches the baseline or the name matches two models.
func PairedDiffs(js []Judged, baseline string, b int, seed uint64) ([]Diff, error) {
	groups, err := collect(js)
	if err != nil {
		return nil, err
	}
	base := map[string]*groupData{} // decoding → baseline group
	var baseModel *Group
	for _, gd := range groups {
		if MatchModel(baseline, gd.g.ModelName, gd.g.Model) {
			if baseModel != nil && (baseModel.Model != gd.g.Model || baseModel.ModelName != gd.g.ModelName) {
				return nil, fmt.Errorf("baseline %q matches two models: %s and %s", baseline, baseModel.Label(), gd.g.Label())
			}
			g := gd.g
			baseModel = &g
			base[gd.g.Decoding] = gd
		}
	}
	if baseModel == nil {
		var names []string
		seen := map[string]bool{}
		for _, gd := range groups {
			if l := gd.g.Label(); !seen[l] {
				seen[l] = true
				names = append(names, l)
			}
		}
		sort.Strings(names)
		return nil, fmt.Errorf("baseline %q matches no judged model (models: %s)", baseline, strings.Join(names, ", "))
	}
	var out []Diff
	for _, gd := range groups {
		bg := base[gd.g.Decoding]
		if bg == nil || bg == gd {
			continue
		}
		var d []float64
		for _, it := range gd.items {
			k, ok := bg.byKey[it.key]
			if !ok || !it.valid || !bg.items[k].valid {
				continue
			}
			d = append(d, it.value-bg.items[k].value)
		}
		name := gd.g.Model + "\x00" + gd.g.ModelName + "\x00" + gd.g.Decoding
		out = append(out, Diff{Group: gd.g, Baseline: bg.g, Interval: BootstrapMean(d, b, NewRand(seed, "diff\x00"+name))})
	}
	return out, nil
}
