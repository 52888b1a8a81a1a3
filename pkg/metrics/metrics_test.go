package metrics

import (
	"bytes"
	"image/png"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/cpo-toolchain/cpo/pkg/model"
	"github.com/cpo-toolchain/cpo/pkg/shard"
)

// The percentile bootstrap of a proportion must agree with the normal approximation
// p ± 1.96·sqrt(p(1-p)/n) when n is large.
func TestBootstrapMatchesNormalApproximation(t *testing.T) {
	for _, tc := range []struct {
		n, k int
	}{{400, 120}, {1000, 500}, {600, 510}} {
		xs := make([]float64, tc.n)
		for i := 0; i < tc.k; i++ {
			xs[i] = 1
		}
		iv := BootstrapMean(xs, 10000, NewRand(1, "t"))
		p := float64(tc.k) / float64(tc.n)
		half := 1.96 * math.Sqrt(p*(1-p)/float64(tc.n))
		if math.Abs(iv.Value-p) > 1e-12 {
			t.Fatalf("mean %g, want %g", iv.Value, p)
		}
		if math.Abs(iv.Lo-(p-half)) > 0.15*half || math.Abs(iv.Hi-(p+half)) > 0.15*half {
			t.Errorf("n=%d p=%g: bootstrap [%.4f, %.4f], normal approximation [%.4f, %.4f]", tc.n, p, iv.Lo, iv.Hi, p-half, p+half)
		}
	}
	// Seeded: the same seed and group give the same interval, another group another one.
	xs := []float64{0.13, 1.7, 1.1, 0.05, 1.93, 0.52, 1.01, 0.002, 0.77}
	a := BootstrapMean(xs, 2000, NewRand(7, "g"))
	b := BootstrapMean(xs, 2000, NewRand(7, "g"))
	c := BootstrapMean(xs, 2000, NewRand(7, "h"))
	if a != b {
		t.Fatalf("not deterministic: %+v vs %+v", a, b)
	}
	if a == c {
		t.Fatalf("different groups drew the same resamples")
	}
	if iv := BootstrapMean([]float64{1}, 100, NewRand(1, "")); !math.IsNaN(iv.Lo) || iv.Value != 1 {
		t.Fatalf("single item: %+v", iv)
	}
}

func TestPercentile(t *testing.T) {
	xs := []float64{4, 1, 3, 2, 5}
	if got := Percentile(xs, 0.5); got != 3 {
		t.Fatalf("median %g", got)
	}
	if got := Percentile([]float64{1, 2}, 0.25); got != 1.25 {
		t.Fatalf("q.25 %g", got)
	}
}

func judged(model, dec, id string, outcome string) Judged {
	return Judged{Judgment: shard.Judgment{ID: id, Model: "fp-" + model, ModelName: "runs/" + model, Decoding: dec,
		Judge: "j", Template: "dolly", Outcome: outcome}, Where: "f.parquet row " + id}
}

func TestWinRatesCountsTiesAndInvalid(t *testing.T) {
	var js []Judged
	outs := []string{"win", "win", "tie", "loss", "invalid", "tie", "win", "loss"}
	for i, o := range outs {
		js = append(js, judged("cpo", "greedy", string(rune('a'+i)), o))
	}
	wr, err := WinRates(js, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	w := wr[0]
	if w.Wins != 3 || w.Ties != 2 || w.Losses != 2 || w.Invalid != 1 {
		t.Fatalf("counts %+v", w)
	}
	// (3 + 2·0.5) / 7 valid
	if math.Abs(w.WinRate.Value-4.0/7) > 1e-12 || w.WinRate.N != 7 {
		t.Fatalf("win rate %+v", w.WinRate)
	}
	if math.Abs(w.TieRate.Value-2.0/7) > 1e-12 || math.Abs(w.InvalidRate.Value-1.0/8) > 1e-12 || w.InvalidRate.N != 8 {
		t.Fatalf("tie %+v invalid %+v", w.TieRate, w.InvalidRate)
	}
	if w.Label() != "cpo" {
		t.Fatalf("label %q", w.Label())
	}
	// Bad input.
	dup := append(js[:1:1], js[0])
	if _, err := WinRates(dup, 0, 1); err == nil || !strings.Contains(err.Error(), "duplicate") || !strings.Contains(err.Error(), "row a") {
		t.Fatalf("duplicate: %v", err)
	}
	bad := []Judged{judged("cpo", "greedy", "x", "maybe")}
	if _, err := WinRates(bad, 0, 1); err == nil || !strings.Contains(err.Error(), "row x") {
		t.Fatalf("unknown outcome: %v", err)
	}
	mixed := []Judged{judged("cpo", "greedy", "x", "win"), judged("cpo", "greedy", "y", "win")}
	mixed[1].Judge = "other"
	if _, err := WinRates(mixed, 0, 1); err == nil || !strings.Contains(err.Error(), "separately") {
		t.Fatalf("mixed judges: %v", err)
	}
}

func TestPairedDiff(t *testing.T) {
	var js []Judged
	r := rand.New(rand.NewPCG(3, 4))
	n := 500
	for i := 0; i < n; i++ {
		id := string(rune(0x4e00 + i))
		mle, cpo := "loss", "loss"
		if r.Float64() < 0.5 {
			mle = "win"
		}
		if r.Float64() < 0.6 {
			cpo = "win"
		}
		js = append(js, judged("mle", "greedy", id, mle), judged("cpo", "greedy", id, cpo))
	}
	js = append(js, judged("cpo", "beam4", "zz", "win")) // no baseline for beam4: no diff
	diffs, err := PairedDiffs(js, "mle", 4000, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(diffs) != 1 || diffs[0].Label() != "cpo" || diffs[0].Baseline.Label() != "mle" {
		t.Fatalf("diffs %+v", diffs)
	}
	wr, _ := WinRates(js, 0, 1)
	want := wr[1].WinRate.Value - wr[0].WinRate.Value
	d := diffs[0]
	if math.Abs(d.Value-want) > 1e-12 || d.N != n {
		t.Fatalf("diff %g (n %d), want %g", d.Value, d.N, want)
	}
	// Independent outcomes: the paired interval's half-width is about
	// 1.96·sqrt((p1(1-p1)+p2(1-p2))/n).
	p1, p2 := wr[1].WinRate.Value, wr[0].WinRate.Value
	half := 1.96 * math.Sqrt((p1*(1-p1)+p2*(1-p2))/float64(n))
	if got := (d.Hi - d.Lo) / 2; math.Abs(got-half) > 0.15*half {
		t.Fatalf("half-width %g, want about %g", got, half)
	}
	if _, err := PairedDiffs(js, "nope", 10, 1); err == nil || !strings.Contains(err.Error(), "cpo, mle") {
		t.Fatalf("unknown baseline: %v", err)
	}
}

func TestParseAlpha(t *testing.T) {
	for _, tc := range []struct {
		in, base string
		a        float64
		ok       bool
	}{{"wise-a0.3", "wise", 0.3, true}, {"mixnr-a0", "mixnr", 0, true}, {"bnr-a.5", "bnr", 0.5, true},
		{"mle", "mle", 0, false}, {"llama-a", "llama-a", 0, false}, {"x-a1e3", "x-a1e3", 0, false}} {
		b, a, ok := ParseAlpha(tc.in)
		if b != tc.base || ok != tc.ok || (ok && a != tc.a) {
			t.Errorf("ParseAlpha(%q) = %q %g %v", tc.in, b, a, ok)
		}
	}
}

func TestTables(t *testing.T) {
	s := func(name, dec, metric string, v float64) shard.Score {
		return shard.Score{Model: "fp" + name, ModelName: name, Decoding: dec, Metric: metric, Value: v, Lo: v - 0.01, Hi: v + 0.01, N: 10}
	}
	scores := []shard.Score{
		s("mle", "greedy", "win_rate", 0.522),
		s("mixnr-a0.5", "greedy", "win_rate", 0.610),
		s("mixnr-a0", "greedy", "win_rate", 0.608),
		s("mixnr-a0.5", "greedy", "win_rate_diff", 0.088),
		s("mle", "beam4", "win_rate", 0.514),
	}
	tb, err := BuildTable(scores, "alpha")
	if err != nil {
		t.Fatal(err)
	}
	var md bytes.Buffer
	if err := tb.Markdown(&md, 3, false); err != nil {
		t.Fatal(err)
	}
	want := `| metric (decoding) | mle | mixnr | mixnr |
| --- | --- | --- | --- |
| α | - | 0 | 0.5 |
| WinRate (greedy) | 0.522 | 0.608 | 0.610 |
| WinRate (beam4) | 0.514 |  |  |
| WinRate diff (greedy) |  |  | 0.088 |
`
	if md.String() != want {
		t.Fatalf("markdown:\n%s\nwant:\n%s", md.String(), want)
	}
	var csvb bytes.Buffer
	if err := tb.CSV(&csvb); err != nil {
		t.Fatal(err)
	}
	wantCSV := "metric (decoding),mle,mixnr,mixnr\nα,-,0,0.5\nWinRate (greedy),0.522,0.608,0.61\nWinRate (beam4),0.514,,\nWinRate diff (greedy),,,0.088\n"
	if csvb.String() != wantCSV {
		t.Fatalf("csv:\n%s\nwant:\n%s", csvb.String(), wantCSV)
	}
	tm, err := BuildTable(scores[:2], "model")
	if err != nil {
		t.Fatal(err)
	}
	md.Reset()
	tm.Markdown(&md, 3, true)
	if !strings.Contains(md.String(), "| metric (decoding) | mle | mixnr-a0.5 |") || !strings.Contains(md.String(), "0.610 [0.600, 0.620]") {
		t.Fatalf("model table:\n%s", md.String())
	}
	if _, err := BuildTable(scores, "rows"); err == nil {
		t.Fatal("bad mode accepted")
	}
}

func tinyModel(t *testing.T, init bool) *model.Model {
	t.Helper()
	m, err := model.New(model.Config{Arch: "gpt2", VocabSize: 16, MaxSeqLen: 32, NLayer: 1, NHead: 2, NKVHead: 2,
		DModel: 8, DFF: 32, NormEps: 1e-5, TieEmbeddings: true, BOS: 0, EOS: 15})
	if err != nil {
		t.Fatal(err)
	}
	if init {
		m.InitGPT2Style(5)
	}
	return m
}

// A model with all parameters zero puts the same logit on every token, so
// log P̂(y|x) = −|y| log V exactly: eq. (9) and eq. (10) can be worked out by hand.
func TestEq9Eq10ByHand(t *testing.T) {
	m := tinyModel(t, false)
	sc := NewScorer(m)
	prompts := [][]int32{{1, 2, 3}, {4}, {5, 6}}
	resp := [][]int32{{7, 8}, {9, 10, 11, 15}, {12}}
	lp, err := sc.Score(prompts, resp)
	if err != nil {
		t.Fatal(err)
	}
	lv := math.Log(16)
	for i, r := range resp {
		if math.Abs(lp[i].Sum+float64(len(r))*lv) > 1e-5 || lp[i].Tokens != len(r) {
			t.Fatalf("pair %d: log P̂ %g over %d tokens, want %g", i, lp[i].Sum, lp[i].Tokens, -float64(len(r))*lv)
		}
	}
	g := Group{Model: "q", ModelName: "q", Decoding: "greedy"}
	// Prompt x1 has two continuations (one generated twice: counted once), x2 one.
	items := []Scored{
		{Group: g, Prompt: "x1", Y: "7 8", LogQ: math.Log(0.5), LogP: lp[0].Sum, Tokens: 2},
		{Group: g, Prompt: "x1", Y: "7 8", LogQ: math.Log(0.5), LogP: lp[0].Sum, Tokens: 2},
		{Group: g, Prompt: "x1", Y: "12", LogQ: math.Log(0.25), LogP: lp[2].Sum, Tokens: 1},
		{Group: g, Prompt: "x2", Y: "9 10 11 15", LogQ: math.Log(0.1), LogP: lp[1].Sum, Tokens: 4},
	}
	res, err := Likelihood(items, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	// eq. (9): x1: 0.5(log .5 + 2 log 16) + 0.25(log .25 + log 16); x2: 0.1(log .1 + 4 log 16).
	kl := ((0.5*(math.Log(0.5)+2*lv) + 0.25*(math.Log(0.25)+lv)) + 0.1*(math.Log(0.1)+4*lv)) / 2
	// eq. (10): x1: 2 log16/2 + log16/1; x2: 4 log16/4.
	nll := ((lv + lv) + lv) / 2
	r := res[0]
	if math.Abs(r.ReverseKL.Value-kl) > 1e-5 || math.Abs(r.NLL.Value-nll) > 1e-5 || r.ReverseKL.N != 2 || r.Generations != 3 {
		t.Fatalf("got %+v, want reverse-KL %g and NLL %g over 2 prompts, 3 generations", r, kl, nll)
	}
	// A vanishing Q contributes nothing to eq. (9), not NaN.
	res, _ = Likelihood([]Scored{{Group: g, Prompt: "x", Y: "y", LogQ: -2000, LogP: -3, Tokens: 1}}, 0, 1)
	if res[0].ReverseKL.Value != 0 || res[0].NLL.Value != 3 {
		t.Fatalf("vanishing Q: %+v", res[0])
	}
	if _, err := Likelihood([]Scored{{Group: g, Prompt: "x", Y: "", Tokens: 0, Where: "g.parquet row 3"}}, 0, 1); err == nil || !strings.Contains(err.Error(), "row 3") {
		t.Fatalf("empty y: %v", err)
	}
}

// Scorer (inference logits + log-softmax, packed in several batches) must equal the sum of
// model.Forward's per-position logp over the response positions of each sequence run alone.
func TestScorerMatchesForward(t *testing.T) {
	m := tinyModel(t, true)
	prompts := [][]int32{{1, 2, 3}, {4}, {5, 6, 7, 8, 9}, {}}
	resp := [][]int32{{7, 8}, {9, 10, 11, 15}, {12}, {3, 4}}
	sc := NewScorer(m)
	sc.BatchTokens = 7 // force several batches
	got, err := sc.Score(prompts, resp)
	if err != nil {
		t.Fatal(err)
	}
	ws := model.NewWorkspace()
	for i := range prompts {
		p := prompts[i]
		if len(p) == 0 {
			p = []int32{0} // BOS
		}
		seq := append(append([]int32{}, p...), resp[i]...)
		logp := m.Forward(ws, model.Pack([][]int32{seq}))
		var want float64
		for t := len(p) - 1; t < len(seq)-1; t++ {
			want += float64(logp[t])
		}
		if math.Abs(got[i].Sum-want) > 1e-4 {
			t.Errorf("pair %d: Scorer %g, Forward %g", i, got[i].Sum, want)
		}
	}
	if _, err := sc.Score([][]int32{{1}}, [][]int32{{99}}); err == nil || !strings.Contains(err.Error(), "pair 0") {
		t.Fatalf("token outside the vocabulary: %v", err)
	}
	long := make([]int32, 40)
	if _, err := sc.Score([][]int32{{1}}, [][]int32{long}); err == nil || !strings.Contains(err.Error(), "context") {
		t.Fatalf("too long: %v", err)
	}
}

func TestTablePlot(t *testing.T) {
	var scores []shard.Score
	for _, n := range []string{"mle", "mixnr-a0", "mixnr-a0.5", "mixnr-a0.9"} {
		for k, d := range []string{"greedy", "beam4"} {
			v := 0.5 + 0.01*float64(len(n)+k)
			scores = append(scores, shard.Score{Model: "fp" + n, ModelName: n, Decoding: d, Metric: MetricWinRate, Value: v, Lo: v - 0.05, Hi: v + 0.05},
				shard.Score{Model: "fp" + n, ModelName: n, Decoding: d, Metric: MetricNLL, Value: 3 + v, Lo: math.NaN(), Hi: math.NaN()})
		}
	}
	for _, mode := range []string{"model", "alpha"} {
		tb, err := BuildTable(scores, mode)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range []string{MetricWinRate, MetricNLL} {
			b, err := tb.Plot(m, "t")
			if err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) {
				t.Fatalf("%s %s: %v", mode, m, err)
			}
		}
		if _, err := tb.Plot(MetricReverseKL, "t"); err == nil {
			t.Fatal("plot of an absent metric accepted")
		}
	}
}

// Table 3's shape: decoding configurations as columns, one row per model.
func TestTableByDecoding(t *testing.T) {
	s := func(name, dec string, v float64) shard.Score {
		return shard.Score{Model: "fp" + name, ModelName: "runs/" + name, Decoding: dec, Metric: MetricWinRate, Value: v, Lo: v - 0.01, Hi: v + 0.01, N: 1000}
	}
	var scores []shard.Score
	for _, m := range []struct {
		name string
		v    [4]float64
	}{{"mixnr", [4]float64{0.591, 0.611, 0.607, 0.6}}, {"mle", [4]float64{0.497, 0.517, 0.532, 0.514}}} {
		for i, d := range []string{"top-k50-p1", "top-k50-p0.7", "beam2", "beam4"} {
			scores = append(scores, s(m.name, d, m.v[i]))
		}
	}
	tb, err := BuildTable(scores, "decoding")
	if err != nil {
		t.Fatal(err)
	}
	var md bytes.Buffer
	if err := tb.Markdown(&md, 3, false); err != nil {
		t.Fatal(err)
	}
	want := `| metric (model) \ decoding | top-k50-p1 | top-k50-p0.7 | beam2 | beam4 |
| --- | --- | --- | --- | --- |
| WinRate (mixnr) | 0.591 | 0.611 | 0.607 | 0.600 |
| WinRate (mle) | 0.497 | 0.517 | 0.532 | 0.514 |
`
	if md.String() != want {
		t.Fatalf("markdown:\n%s\nwant:\n%s", md.String(), want)
	}
	var csvb bytes.Buffer
	if err := tb.CSV(&csvb); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(csvb.String(), `metric (model) \ decoding,top-k50-p1,top-k50-p0.7,beam2,beam4`+"\nWinRate (mixnr),0.591,") {
		t.Fatalf("csv:\n%s", csvb.String())
	}
	if b, err := tb.Plot(MetricWinRate, "Table 3"); err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) {
		t.Fatalf("plot: %v", err)
	}
	if _, err := BuildTable(append(scores, s("mixnr", "beam4", 0.5)), "decoding"); err == nil {
		t.Fatal("two scores for one cell accepted")
	}
}

// Values too small for the table's decimals (eq. 9 is dominated by tiny Q(y|x)) are shown in
// scientific notation instead of as "0.000" or "-0.000".
func TestMarkdownSmallValues(t *testing.T) {
	tb, err := BuildTable([]shard.Score{
		{Model: "a", ModelName: "mle", Decoding: "greedy", Metric: MetricReverseKL, Value: -6.366e-08, Lo: -1.2e-07, Hi: 2.5e-09, N: 10},
		{Model: "b", ModelName: "cpo", Decoding: "greedy", Metric: MetricReverseKL, Value: 0, Lo: 0, Hi: 0.25, N: 10},
	}, "model")
	if err != nil {
		t.Fatal(err)
	}
	var md bytes.Buffer
	if err := tb.Markdown(&md, 3, true); err != nil {
		t.Fatal(err)
	}
	want := "| Reverse-KL eq.9 (greedy) | -6.37e-08 [-1.20e-07, 2.50e-09] | 0.000 [0.000, 0.250] |\n"
	if !strings.HasSuffix(md.String(), want) {
		t.Fatalf("markdown:\n%s\nwant the last line\n%s", md.String(), want)
	}
}

// Figure 1 of the paper: reverse-KL and NLL panels side by side.
func TestPlotMetricsPanels(t *testing.T) {
	var scores []shard.Score
	for i, n := range []string{"mle", "mixn", "mixnr"} {
		v := float64(i)
		scores = append(scores, shard.Score{Model: "fp" + n, ModelName: n, Decoding: "greedy", Metric: MetricReverseKL, Value: 0.1 * v, Lo: math.NaN(), Hi: math.NaN()},
			shard.Score{Model: "fp" + n, ModelName: n, Decoding: "greedy", Metric: MetricNLL, Value: 3 - v, Lo: 2.9 - v, Hi: 3.1 - v})
	}
	tb, err := BuildTable(scores, "model")
	if err != nil {
		t.Fatal(err)
	}
	one, err := tb.Plot(MetricNLL, "nll")
	if err != nil {
		t.Fatal(err)
	}
	two, err := tb.PlotMetrics([]string{MetricReverseKL, MetricNLL}, "Figure 1")
	if err != nil {
		t.Fatal(err)
	}
	c1, err1 := png.DecodeConfig(bytes.NewReader(one))
	c2, err2 := png.DecodeConfig(bytes.NewReader(two))
	if err1 != nil || err2 != nil || c2.Width != 2*c1.Width || c2.Height != c1.Height {
		t.Fatalf("one panel %+v (%v), two panels %+v (%v)", c1, err1, c2, err2)
	}
	if _, err := tb.PlotMetrics([]string{MetricNLL, MetricWinRate}, "x"); err == nil {
		t.Fatal("a panel of an absent metric accepted")
	}
}
