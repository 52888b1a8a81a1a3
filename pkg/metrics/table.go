package metrics

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/cpo-toolchain/cpo/pkg/shard"
)

// MetricOrder is the order of the metrics in tables (rows) and their display names.
var MetricOrder = []struct{ Name, Display string }{
	{MetricWinRate, "WinRate"},
	{MetricWinRateDiff, "WinRate diff"},
	{MetricTieRate, "TieRate"},
	{MetricInvalidRate, "InvalidRate"},
	{MetricExactMatch, "ExactMatch"},
	{MetricReverseKL, "Reverse-KL eq.9"},
	{MetricNLL, "NLL/token eq.10"},
}

// ScoreRows turns the summaries into score-shard rows: win_rate, tie_rate and invalid_rate
// per group, win_rate_diff per paired difference (Baseline = the baseline's label), and
// reverse_kl and nll per likelihood group (Scorer = the scoring model's fingerprint).
func ScoreRows(wr []WinRate, diffs []Diff, lk []LikelihoodResult, scorer string) []shard.Score {
	var out []shard.Score
	row := func(g Group, metric string, iv Interval) shard.Score {
		return shard.Score{Model: g.Model, ModelName: g.ModelName, Decoding: g.Decoding, Metric: metric,
			Value: iv.Value, Lo: iv.Lo, Hi: iv.Hi, N: int64(iv.N)}
	}
	for _, w := range wr {
		out = append(out, row(w.Group, MetricWinRate, w.WinRate), row(w.Group, MetricTieRate, w.TieRate),
			row(w.Group, MetricInvalidRate, w.InvalidRate))
	}
	for _, d := range diffs {
		s := row(d.Group, MetricWinRateDiff, d.Interval)
		s.Baseline = d.Baseline.Label()
		out = append(out, s)
	}
	for _, l := range lk {
		a, b := row(l.Group, MetricReverseKL, l.ReverseKL), row(l.Group, MetricNLL, l.NLL)
		a.Scorer, b.Scorer = scorer, scorer
		out = append(out, a, b)
	}
	return out
}

// Column is one table column: a model, with its α when its label follows the "<base>-a<α>"
// convention (ParseAlpha).
type Column struct {
	Label    string // model label
	Base     string // label without the -a<α> suffix
	Alpha    float64
	HasAlpha bool
}

// Cell is one table entry; OK is false for an empty cell.
type Cell struct {
	Value, Lo, Hi float64
	N             int64
	OK            bool
}

// TableRow is one metric under one decoding configuration (model and alpha modes), or one
// metric of one model (decoding mode: Model is the model's label and Decoding is empty).
type TableRow struct {
	Metric, Decoding string
	Model            string // decoding mode only
	Label            string // e.g. "WinRate (greedy)", or "WinRate (mle)" in decoding mode
	Cells            []Cell // one per column
}

// series is what distinguishes the rows of one metric: the decoding, or the model in
// decoding mode.
func (r TableRow) series() string {
	if r.Model != "" {
		return r.Model
	}
	return r.Decoding
}

// Table is a result table in the paper's shape: columns are models, rows are (metric,
// decoding) pairs. In alpha mode (Tables 2, 4, 5) the columns are grouped by base model and
// sorted by α within a group, and an "α" line under the header shows each column's α ("-" for
// a model without one). In decoding mode (Table 3: "Model \ Config") the columns are the
// decoding configurations and the rows are (metric, model) pairs.
type Table struct {
	Columns      []Column // in decoding mode, Label is the decoding
	Rows         []TableRow
	AlphaMode    bool
	DecodingMode bool
}

// BuildTable lays out score rows as a table. mode is "model" (columns are models in order of
// first appearance), "alpha" (columns grouped by base name in order of first appearance,
// then by increasing α) or "decoding" (columns are decodings, rows models, as Table 3). Rows
// follow MetricOrder, then decodings (models in decoding mode) in order of first appearance;
// metrics absent from the scores get no row.
func BuildTable(scores []shard.Score, mode string) (*Table, error) {
	if mode == "decoding" {
		return buildByDecoding(scores)
	}
	if mode != "model" && mode != "alpha" {
		return nil, fmt.Errorf("table columns %q: want model, alpha or decoding", mode)
	}
	t := &Table{AlphaMode: mode == "alpha"}
	colIdx := map[string]int{}
	var decodings []string
	seenDec := map[string]bool{}
	for _, s := range scores {
		l := ModelLabel(s.ModelName, s.Model)
		if _, ok := colIdx[l]; !ok {
			base, a, ok := ParseAlpha(l)
			colIdx[l] = len(t.Columns)
			t.Columns = append(t.Columns, Column{Label: l, Base: base, Alpha: a, HasAlpha: ok})
		}
		if !seenDec[s.Decoding] {
			seenDec[s.Decoding] = true
			decodings = append(decodings, s.Decoding)
		}
	}
	if t.AlphaMode {
		firstBase := map[string]int{}
		for i, c := range t.Columns {
			if _, ok := firstBase[c.Base]; !ok {
				firstBase[c.Base] = i
			}
		}
		sort.SliceStable(t.Columns, func(i, j int) bool {
			a, b := t.Columns[i], t.Columns[j]
			if a.Base != b.Base {
				return firstBase[a.Base] < firstBase[b.Base]
			}
			if a.HasAlpha != b.HasAlpha {
				return !a.HasAlpha
			}
			return a.HasAlpha && a.Alpha < b.Alpha
		})
		for i, c := range t.Columns {
			colIdx[c.Label] = i
		}
	}
	type rk struct{ metric, dec string }
	rows := map[rk]*TableRow{}
	for _, m := range MetricOrder {
		for _, d := range decodings {
			rows[rk{m.Name, d}] = &TableRow{Metric: m.Name, Decoding: d, Label: m.Display + " (" + d + ")",
				Cells: make([]Cell, len(t.Columns))}
		}
	}
	used := map[rk]bool{}
	for _, s := range scores {
		r := rows[rk{s.Metric, s.Decoding}]
		if r == nil {
			return nil, fmt.Errorf("score of %s: unknown metric %q", ModelLabel(s.ModelName, s.Model), s.Metric)
		}
		c := &r.Cells[colIdx[ModelLabel(s.ModelName, s.Model)]]
		if c.OK {
			return nil, fmt.Errorf("two %s scores for model %s, decoding %s (two models share the label?)", s.Metric, ModelLabel(s.ModelName, s.Model), s.Decoding)
		}
		*c = Cell{Value: s.Value, Lo: s.Lo, Hi: s.Hi, N: s.N, OK: true}
		used[rk{s.Metric, s.Decoding}] = true
	}
	for _, m := range MetricOrder {
		for _, d := range decodings {
			if used[rk{m.Name, d}] {
				t.Rows = append(t.Rows, *rows[rk{m.Name, d}])
			}
		}
	}
	return t, nil
}

// buildByDecoding is BuildTable's decoding mode: one column per decoding, one row per
// (metric, model), both in order of first appearance.
func buildByDecoding(scores []shard.Score) (*Table, error) {
	t := &Table{DecodingMode: true}
	colIdx := map[string]int{}
	var models []string
	seenModel := map[string]bool{}
	for _, s := range scores {
		if _, ok := colIdx[s.Decoding]; !ok {
			colIdx[s.Decoding] = len(t.Columns)
			t.Columns = append(t.Columns, Column{Label: s.Decoding, Base: s.Decoding, Alpha: math.NaN()})
		}
		if l := ModelLabel(s.ModelName, s.Model); !seenModel[l] {
			seenModel[l] = true
			models = append(models, l)
		}
	}
	type rk struct{ metric, model string }
	rows := map[rk]*TableRow{}
	for _, m := range MetricOrder {
		for _, l := range models {
			rows[rk{m.Name, l}] = &TableRow{Metric: m.Name, Model: l, Label: m.Display + " (" + l + ")", Cells: make([]Cell, len(t.Columns))}
		}
	}
	used := map[rk]bool{}
	for _, s := range scores {
		l := ModelLabel(s.ModelName, s.Model)
		r := rows[rk{s.Metric, l}]
		if r == nil {
			return nil, fmt.Errorf("score of %s: unknown metric %q", l, s.Metric)
		}
		c := &r.Cells[colIdx[s.Decoding]]
		if c.OK {
			return nil, fmt.Errorf("two %s scores for model %s, decoding %s (two models share the label?)", s.Metric, l, s.Decoding)
		}
		*c = Cell{Value: s.Value, Lo: s.Lo, Hi: s.Hi, N: s.N, OK: true}
		used[rk{s.Metric, l}] = true
	}
	for _, m := range MetricOrder {
		for _, l := range models {
			if used[rk{m.Name, l}] {
				t.Rows = append(t.Rows, *rows[rk{m.Name, l}])
			}
		}
	}
	return t, nil
}

func (c Column) alphaText() string {
	if !c.HasAlpha {
		return "-"
	}
	return strconv.FormatFloat(c.Alpha, 'f', -1, 64)
}

func (t *Table) header() []string {
	h := []string{"metric (decoding)"}
	if t.DecodingMode {
		h[0] = "metric (model) \\ decoding"
	}
	for _, c := range t.Columns {
		if t.AlphaMode {
			h = append(h, c.Base)
		} else {
			h = append(h, c.Label)
		}
	}
	return h
}

func (t *Table) alphaLine() []string {
	a := []string{"α"}
	for _, c := range t.Columns {
		a = append(a, c.alphaText())
	}
	return a
}

func fmtNum(v float64, digits int) string {
	if math.IsNaN(v) {
		return "nan"
	}
	return strconv.FormatFloat(v, 'f', digits, 64)
}

// cellFormat returns the formatter of a cell whose value is v: digits decimals, or, when v is
// not zero but too small to show at digits decimals (eq. 9's reverse-KL often is), scientific
// notation with digits significant digits, for the value and its interval alike.
func cellFormat(v float64, digits int) func(float64) string {
	if v != 0 && !math.IsNaN(v) && math.Abs(v) < 0.5*math.Pow(10, -float64(digits)) {
		return func(x float64) string {
			if math.IsNaN(x) {
				return "nan"
			}
			return strconv.FormatFloat(x, 'e', max(digits-1, 0), 64)
		}
	}
	return func(x float64) string { return fmtNum(x, digits) }
}

// Markdown writes the table as a GitHub Markdown table with values to digits decimals (tiny
// values in scientific notation, see cellFormat) and, when ci is true, the 95% interval in
// brackets after each value.
func (t *Table) Markdown(w io.Writer, digits int, ci bool) error {
	var b strings.Builder
	line := func(cells []string) {
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
	h := t.header()
	line(h)
	sep := make([]string, len(h))
	for i := range sep {
		sep[i] = "---"
	}
	line(sep)
	if t.AlphaMode {
		line(t.alphaLine())
	}
	for _, r := range t.Rows {
		cells := []string{r.Label}
		for _, c := range r.Cells {
			switch {
			case !c.OK:
				cells = append(cells, "")
			case ci && !math.IsNaN(c.Lo):
				f := cellFormat(c.Value, digits)
				cells = append(cells, fmt.Sprintf("%s [%s, %s]", f(c.Value), f(c.Lo), f(c.Hi)))
			default:
				cells = append(cells, cellFormat(c.Value, digits)(c.Value))
			}
		}
		line(cells)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// CSV writes the table in the same shape as Markdown: a header line of model labels (base
// names in alpha mode, then an "α" line), then one line per row with the values at full
// precision; empty cells are empty fields. Intervals are in the score shard.
func (t *Table) CSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write(t.header())
	if t.AlphaMode {
		cw.Write(t.alphaLine())
	}
	for _, r := range t.Rows {
		rec := []string{r.Label}
		for _, c := range r.Cells {
			if c.OK {
				rec = append(rec, strconv.FormatFloat(c.Value, 'g', -1, 64))
			} else {
				rec = append(rec, "")
			}
		}
		cw.Write(rec)
	}
	cw.Flush()
	return cw.Error()
}
