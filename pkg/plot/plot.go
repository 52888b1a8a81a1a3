// Package plot draws small line and bar charts as PNG images with the standard library's image
// packages and the 7×13 bitmap font of golang.org/x/image/font/basicfont: enough for the
// paper's Figure 1 (a metric against models or against the ensemble weight α) and for training
// curves, with no dependency on a plotting stack.
//
// A chart is Width×Height pixels (default 800×500): a title on top, the plot area with light
// grid lines at "nice" ticks (1, 2 or 5 × 10^k), axis labels (the y label drawn vertically), and
// a legend on the right. NaN or infinite values are skipped (a line is broken there). Optional
// Lo/Hi slices draw error bars (e.g. 95% confidence intervals).
package plot

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"strconv"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// Series is one named set of points. X and Y have the same length. Lo and Hi, when not nil,
// have that length too and give each point's error bar (NaN: none). Bars ignores X.
type Series struct {
	Name   string
	X, Y   []float64
	Lo, Hi []float64
}

// Options are the canvas size in pixels; zero fields take the defaults 800×500.
type Options struct {
	Width, Height int
}

func (o Options) size() (int, int) {
	w, h := o.Width, o.Height
	if w <= 0 {
		w = 800
	}
	if h <= 0 {
		h = 500
	}
	return w, h
}

// Palette holds the series colours, used in order and repeated.
var Palette = []color.RGBA{
	{31, 119, 180, 255}, {255, 127, 14, 255}, {44, 160, 44, 255}, {214, 39, 40, 255},
	{148, 103, 189, 255}, {140, 86, 75, 255}, {227, 119, 194, 255}, {127, 127, 127, 255},
}

var (
	white = color.RGBA{255, 255, 255, 255}
	black = color.RGBA{0, 0, 0, 255}
	grid  = color.RGBA{225, 225, 225, 255}
	face  = basicfont.Face7x13
)

const (
	charW  = 7  // basicfont.Face7x13 advance, pixels
	lineH  = 13 // its line height
	ascent = 11 // its ascent
)

// Lines draws the series as lines with point markers against a numeric x axis and returns
// the PNG bytes.
func Lines(title, xlabel, ylabel string, series []Series) ([]byte, error) {
	img, err := LinesImage(Options{}, title, xlabel, ylabel, series)
	if err != nil {
		return nil, err
	}
	return encode(img)
}

// Bars draws grouped bars: one group per category, one bar per series in each group
// (series[s].Y[i] is the bar of category i), and returns the PNG bytes.
func Bars(title, ylabel string, categories []string, series []Series) ([]byte, error) {
	img, err := BarsImage(Options{}, title, ylabel, categories, series)
	if err != nil {
		return nil, err
	}
	return encode(img)
}

func encode(img image.Image) ([]byte, error) {
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// frame is the canvas with its plot area and data-to-pixel mapping.
type frame struct {
	img                   *image.RGBA
	left, top, right, bot int // plot area in pixels
	x0, x1, y0, y1        float64
	xticks, yticks        []float64
	legendX               int
	categorical           bool
	categories            []string
	width, height         int
	title, xlabel, ylabel string
	legend                []string
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func checkSeries(series []Series, needX bool, n int) error {
	if len(series) == 0 {
		return fmt.Errorf("plot: no series")
	}
	for i, s := range series {
		if needX && len(s.X) != len(s.Y) {
			return fmt.Errorf("plot: series %d (%q) has %d x values and %d y values", i, s.Name, len(s.X), len(s.Y))
		}
		if !needX && len(s.Y) != n {
			return fmt.Errorf("plot: series %d (%q) has %d values for %d categories", i, s.Name, len(s.Y), n)
		}
		if (s.Lo != nil && len(s.Lo) != len(s.Y)) || (s.Hi != nil && len(s.Hi) != len(s.Y)) {
			return fmt.Errorf("plot: series %d (%q): Lo/Hi must have as many values as Y", i, s.Name)
		}
	}
	return nil
}

// yRange returns the range of every finite Y, Lo and Hi value, padded to nice ticks.
func yRange(series []Series, withZero bool) (lo, hi float64, ok bool) {
	lo, hi = math.Inf(1), math.Inf(-1)
	add := func(v float64) {
		if finite(v) {
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	for _, s := range series {
		for i, v := range s.Y {
			add(v)
			if s.Lo != nil {
				add(s.Lo[i])
			}
			if s.Hi != nil {
				add(s.Hi[i])
			}
		}
	}
	if lo > hi {
		return 0, 1, false
	}
	if withZero {
		lo, hi = math.Min(lo, 0), math.Max(hi, 0)
	}
	return lo, hi, true
}

// NiceTicks returns about n tick values covering [lo, hi] with a step of 1, 2 or 5 × 10^k, and
// the covered range [first tick, last tick].
func NiceTicks(lo, hi float64, n int) (ticks []float64, tlo, thi float64) {
	if !(hi > lo) {
		d := math.Max(math.Abs(lo)*0.1, 0.5)
		lo, hi = lo-d, hi+d
	}
	raw := (hi - lo) / float64(max(n, 1))
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	tlo = math.Floor(lo/step+1e-9) * step
	thi = math.Ceil(hi/step-1e-9) * step
	for v := tlo; v <= thi+step*1e-6; v += step {
		ticks = append(ticks, math.Round(v/step)*step)
	}
	return ticks, tlo, thi
}

func tickLabel(v float64, ticks []float64) string {
	step := 1.0
	if len(ticks) > 1 {
		step = ticks[1] - ticks[0]
	}
	dec := 0
	if step < 1 {
		dec = int(math.Ceil(-math.Log10(step) - 1e-9))
	}
	if math.Abs(v) >= 1e5 || (v != 0 && math.Abs(v) < 1e-4) {
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
	return strconv.FormatFloat(v, 'f', dec, 64)
}

func newFrame(o Options, title, xlabel, ylabel string, legend []string) *frame {
	w, h := o.size()
	f := &frame{img: image.NewRGBA(image.Rect(0, 0, w, h)), width: w, height: h,
		title: title, xlabel: xlabel, ylabel: ylabel, legend: legend}
	draw.Draw(f.img, f.img.Bounds(), &image.Uniform{white}, image.Point{}, draw.Src)
	legendW := 0
	for _, s := range legend {
		legendW = max(legendW, len(s))
	}
	legendW = min(legendW, 24)*charW + 40
	f.left, f.top = 78, 36
	f.right, f.bot = w-legendW-10, h-52
	f.legendX = f.right + 14
	return f
}

func (f *frame) px(x float64) int {
	return f.left + int(math.Round((x-f.x0)/(f.x1-f.x0)*float64(f.right-f.left)))
}

func (f *frame) py(y float64) int {
	return f.bot - int(math.Round((y-f.y0)/(f.y1-f.y0)*float64(f.bot-f.top)))
}

// axes draws the grid, ticks, tick labels, axis labels and title.
func (f *frame) axes() {
	for _, t := range f.yticks {
		y := f.py(t)
		hline(f.img, f.left, f.right, y, grid)
		s := tickLabel(t, f.yticks)
		text(f.img, f.left-6-len(s)*charW, y+ascent/2-1, s, black)
	}
	if f.categorical {
		n := len(f.categories)
		slot := float64(f.right-f.left) / float64(n)
		maxc := max(int(slot)/charW, 3)
		for i, c := range f.categories {
			if len(c) > maxc {
				c = c[:maxc-1] + "~"
			}
			cx := f.left + int((float64(i)+0.5)*slot)
			text(f.img, cx-len(c)*charW/2, f.bot+4+ascent, c, black)
		}
	} else {
		for _, t := range f.xticks {
			x := f.px(t)
			vline(f.img, x, f.top, f.bot, grid)
			vline(f.img, x, f.bot, f.bot+4, black)
			s := tickLabel(t, f.xticks)
			text(f.img, x-len(s)*charW/2, f.bot+6+ascent, s, black)
		}
	}
	hline(f.img, f.left, f.right, f.bot, black)
	vline(f.img, f.left, f.top, f.bot, black)
	hline(f.img, f.left, f.right, f.top, black)
	vline(f.img, f.right, f.top, f.bot, black)
	text(f.img, (f.left+f.right)/2-len(f.xlabel)*charW/2, f.height-12, f.xlabel, black)
	text(f.img, f.width/2-len(f.title)*charW/2, 8+ascent, f.title, black)
	vtext(f.img, 8, (f.top+f.bot)/2+len(f.ylabel)*charW/2, f.ylabel, black)
	for i, name := range f.legend {
		y := f.top + 8 + i*(lineH+6)
		c := Palette[i%len(Palette)]
		fill(f.img, image.Rect(f.legendX, y, f.legendX+22, y+4), c)
		if len(name) > 24 {
			name = name[:23] + "~"
		}
		text(f.img, f.legendX+28, y+ascent/2+2, name, black)
	}
}

// LinesImage is Lines returning the image.
func LinesImage(o Options, title, xlabel, ylabel string, series []Series) (*image.RGBA, error) {
	if err := checkSeries(series, true, 0); err != nil {
		return nil, err
	}
	names := make([]string, len(series))
	xlo, xhi := math.Inf(1), math.Inf(-1)
	for i, s := range series {
		names[i] = s.Name
		for j, x := range s.X {
			if finite(x) && finite(s.Y[j]) {
				xlo, xhi = math.Min(xlo, x), math.Max(xhi, x)
			}
		}
	}
	if xlo > xhi {
		xlo, xhi = 0, 1
	}
	f := newFrame(o, title, xlabel, ylabel, names)
	ylo, yhi, _ := yRange(series, false)
	f.yticks, f.y0, f.y1 = NiceTicks(ylo, yhi, 6)
	f.xticks, f.x0, f.x1 = NiceTicks(xlo, xhi, 8)
	f.axes()
	for i, s := range series {
		c := Palette[i%len(Palette)]
		havePrev := false
		var px0, py0 int
		for j := range s.X {
			if !finite(s.X[j]) || !finite(s.Y[j]) {
				havePrev = false
				continue
			}
			x, y := f.px(s.X[j]), f.py(s.Y[j])
			if havePrev {
				thickLine(f.img, px0, py0, x, y, c)
			}
			errorBar(f, s, j, x, c)
			fill(f.img, image.Rect(x-3, y-3, x+4, y+4), c)
			px0, py0, havePrev = x, y, true
		}
	}
	return f.img, nil
}

// BarsImage is Bars returning the image. The y axis always includes 0.
func BarsImage(o Options, title, ylabel string, categories []string, series []Series) (*image.RGBA, error) {
	if len(categories) == 0 {
		return nil, fmt.Errorf("plot: no categories")
	}
	if err := checkSeries(series, false, len(categories)); err != nil {
		return nil, err
	}
	names := make([]string, len(series))
	for i, s := range series {
		names[i] = s.Name
	}
	f := newFrame(o, title, "", ylabel, names)
	f.categorical, f.categories = true, categories
	ylo, yhi, _ := yRange(series, true)
	f.yticks, f.y0, f.y1 = NiceTicks(ylo, yhi, 6)
	f.axes()
	slot := float64(f.right-f.left) / float64(len(categories))
	barW := slot * 0.8 / float64(len(series))
	zero := f.py(0)
	for i, s := range series {
		c := Palette[i%len(Palette)]
		for j, v := range s.Y {
			if !finite(v) {
				continue
			}
			x0 := f.left + int(float64(j)*slot+slot*0.1+float64(i)*barW)
			x1 := x0 + max(int(barW)-1, 1)
			y := f.py(v)
			fill(f.img, image.Rect(x0, min(y, zero), x1, max(y, zero)+1), c)
			errorBar(f, s, j, (x0+x1)/2, black)
		}
	}
	hline(f.img, f.left, f.right, zero, black)
	return f.img, nil
}

func errorBar(f *frame, s Series, j, x int, c color.RGBA) {
	if s.Lo == nil || s.Hi == nil || !finite(s.Lo[j]) || !finite(s.Hi[j]) {
		return
	}
	ylo, yhi := f.py(s.Lo[j]), f.py(s.Hi[j])
	vline(f.img, x, yhi, ylo, c)
	hline(f.img, x-4, x+4, ylo, c)
	hline(f.img, x-4, x+4, yhi, c)
}

func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	draw.Draw(img, r.Intersect(img.Bounds()), &image.Uniform{c}, image.Point{}, draw.Src)
}

func hline(img *image.RGBA, x0, x1, y int, c color.RGBA) {
	for x := min(x0, x1); x <= max(x0, x1); x++ {
		img.SetRGBA(x, y, c)
	}
}

func vline(img *image.RGBA, x, y0, y1 int, c color.RGBA) {
	for y := min(y0, y1); y <= max(y0, y1); y++ {
		img.SetRGBA(x, y, c)
	}
}

// thickLine draws a 2-pixel line from (x0, y0) to (x1, y1) (Bresenham, doubled).
func thickLine(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	e := dx + dy
	for {
		img.SetRGBA(x0, y0, c)
		img.SetRGBA(x0+1, y0, c)
		img.SetRGBA(x0, y0+1, c)
		if x0 == x1 && y0 == y1 {
			return
		}
		if e2 := 2 * e; e2 >= dy {
			e += dy
			x0 += sx
		} else {
			e += dx
			y0 += sy
		}
	}
}

func abs(a int) int {
	if a < 0 {
		return -a
	}
	return a
}

func sign(a int) int {
	switch {
	case a < 0:
		return -1
	case a > 0:
		return 1
	}
	return 0
}

// text draws s with its baseline at y, starting at x. Characters outside ASCII are shown as
// '?', the font having no glyph for them.
func text(img *image.RGBA, x, y int, s string, c color.RGBA) {
	s = strings.Map(func(r rune) rune {
		if r < 32 || r > 126 {
			return '?'
		}
		return r
	}, s)
	d := font.Drawer{Dst: img, Src: &image.Uniform{c}, Face: face, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

// vtext draws s rotated 90° counter-clockwise, reading upwards from (x, y) at its bottom-left.
func vtext(img *image.RGBA, x, y int, s string, c color.RGBA) {
	if s == "" {
		return
	}
	tmp := image.NewRGBA(image.Rect(0, 0, len(s)*charW, lineH))
	text(tmp, 0, ascent, s, c)
	b := tmp.Bounds()
	for ty := 0; ty < b.Dy(); ty++ {
		for tx := 0; tx < b.Dx(); tx++ {
			p := tmp.RGBAAt(tx, ty)
			if p.A == 0 {
				continue
			}
			img.SetRGBA(x+ty, y-tx, p)
		}
	}
}

// EncodePNG returns the PNG bytes of img.
func EncodePNG(img image.Image) ([]byte, error) { return encode(img) }

// SideBySide places the images left to right on a white canvas as tall as the tallest (the
// panels of a figure such as the paper's Figure 1: reverse-KL beside NLL).
func SideBySide(imgs ...*image.RGBA) *image.RGBA {
	w, h := 0, 0
	for _, im := range imgs {
		w += im.Bounds().Dx()
		h = max(h, im.Bounds().Dy())
	}
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	fill(out, out.Bounds(), white)
	x := 0
	for _, im := range imgs {
		r := im.Bounds()
		draw.Draw(out, image.Rect(x, 0, x+r.Dx(), r.Dy()), im, r.Min, draw.Src)
		x += r.Dx()
	}
	return out
}
