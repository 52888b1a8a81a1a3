package metrics

import (
	"fmt"
	"image"
	"math"
	"strings"

	"github.com/cpo-toolchain/cpo/pkg/plot"
)

// Plot draws one metric of the table as a PNG like the paper's Figure 1. In model mode: grouped
// bars, one group per model (column), one bar per decoding, with the 95% intervals as error
// bars (in decoding mode: one group per decoding, one bar per model). In alpha mode: metric
// against α, one line per (base model, decoding); a model without α is drawn as a flat line
// across the α range, so the baseline reads as a reference level.
func (t *Table) Plot(metric, title string) ([]byte, error) {
	return t.PlotMetrics([]string{metric}, title)
}

// PlotMetrics draws one panel per metric, side by side, as one PNG: the paper's Figure 1 is
// PlotMetrics([]string{MetricReverseKL, MetricNLL}, ...). With several metrics each panel's
// title is title followed by the metric's display name.
func (t *Table) PlotMetrics(metrics []string, title string) ([]byte, error) {
	if len(metrics) == 0 {
		return nil, fmt.Errorf("plot: no metric")
	}
	var panels []*image.RGBA
	for _, m := range metrics {
		pt := title
		if len(metrics) > 1 {
			pt = strings.TrimSpace(title + " " + displayName(m))
		}
		img, err := t.plotImage(m, pt)
		if err != nil {
			return nil, err
		}
		panels = append(panels, img)
	}
	return plot.EncodePNG(plot.SideBySide(panels...))
}

func displayName(metric string) string {
	for _, m := range MetricOrder {
		if m.Name == metric {
			return m.Display
		}
	}
	return metric
}

func (t *Table) plotImage(metric, title string) (*image.RGBA, error) {
	var rows []TableRow
	for _, r := range t.Rows {
		if r.Metric == metric {
			rows = append(rows, r)
		}
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("plot: no %s scores to plot", metric)
	}
	ylabel := displayName(metric)
	nan := math.NaN()
	if !t.AlphaMode {
		cats := make([]string, len(t.Columns))
		for i, c := range t.Columns {
			cats[i] = c.Label
		}
		var series []plot.Series
		for _, r := range rows {
			s := plot.Series{Name: r.series(), Y: make([]float64, len(cats)), Lo: make([]float64, len(cats)), Hi: make([]float64, len(cats))}
			for i, c := range r.Cells {
				s.Y[i], s.Lo[i], s.Hi[i] = nan, nan, nan
				if c.OK {
					s.Y[i], s.Lo[i], s.Hi[i] = c.Value, c.Lo, c.Hi
				}
			}
			series = append(series, s)
		}
		return plot.BarsImage(plot.Options{}, title, ylabel, cats, series)
	}
	amin, amax := math.Inf(1), math.Inf(-1)
	for _, c := range t.Columns {
		if c.HasAlpha {
			amin, amax = math.Min(amin, c.Alpha), math.Max(amax, c.Alpha)
		}
	}
	if amin > amax {
		amin, amax = 0, 1
	}
	var series []plot.Series
	for _, r := range rows {
		byBase := map[string]*plot.Series{}
		var order []string
		for i, c := range t.Columns {
			cell := r.Cells[i]
			if !cell.OK {
				continue
			}
			if !c.HasAlpha {
				series = append(series, plot.Series{Name: c.Label + " " + r.Decoding, X: []float64{amin, amax},
					Y: []float64{cell.Value, cell.Value}})
				continue
			}
			s := byBase[c.Base]
			if s == nil {
				s = &plot.Series{Name: c.Base + " " + r.Decoding}
				byBase[c.Base] = s
				order = append(order, c.Base)
			}
			s.X = append(s.X, c.Alpha)
			s.Y = append(s.Y, cell.Value)
			s.Lo = append(s.Lo, cell.Lo)
			s.Hi = append(s.Hi, cell.Hi)
		}
		for _, b := range order {
			series = append(series, *byBase[b])
		}
	}
	return plot.LinesImage(plot.Options{}, title, "alpha (weight of the MLE model)", ylabel, series)
}
