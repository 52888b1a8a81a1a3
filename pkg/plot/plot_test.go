package plot

import (
	"bytes"
	"image/png"
	"math"
	"os"
	"testing"
)

func TestNiceTicks(t *testing.T) {
	ticks, lo, hi := NiceTicks(0.47, 0.61, 6)
	if lo > 0.47 || hi < 0.61 || len(ticks) < 3 || len(ticks) > 12 {
		t.Fatalf("ticks %v range [%g, %g]", ticks, lo, hi)
	}
	step := ticks[1] - ticks[0]
	if math.Abs(step-0.05) > 1e-12 {
		t.Fatalf("step %g, want 0.05 (ticks %v)", step, ticks)
	}
	if got := tickLabel(ticks[3], ticks); got != "0.60" {
		t.Fatalf("tick label %q, want 0.60", got)
	}
	// A degenerate range still gives a usable axis.
	if ticks, lo, hi := NiceTicks(3, 3, 5); !(lo < 3 && hi > 3) || len(ticks) < 2 {
		t.Fatalf("degenerate: %v [%g, %g]", ticks, lo, hi)
	}
}

func TestLinesAndBars(t *testing.T) {
	series := []Series{
		{Name: "mixnr greedy", X: []float64{0, 0.1, 0.3, 0.5, 0.7, 0.9}, Y: []float64{0.608, 0.620, 0.614, 0.610, 0.601, 0.550},
			Lo: []float64{0.58, 0.59, 0.58, 0.58, 0.57, 0.52}, Hi: []float64{0.64, 0.65, 0.64, 0.64, 0.63, 0.58}},
		{Name: "mle greedy", X: []float64{0, 0.9}, Y: []float64{0.522, 0.522}},
		{Name: "with gap", X: []float64{0, 0.5, 0.9}, Y: []float64{0.5, math.NaN(), 0.56}},
	}
	b, err := Lines("Win rate vs alpha", "alpha", "win rate", series)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if img.Bounds().Dx() != 800 || img.Bounds().Dy() != 500 {
		t.Fatalf("size %v", img.Bounds())
	}
	// The first series' colour must appear (lines were drawn), and something dark (text).
	colored, dark := 0, 0
	for y := 0; y < 500; y++ {
		for x := 0; x < 800; x++ {
			r, g, bb, _ := img.At(x, y).RGBA()
			c := Palette[0]
			if r>>8 == uint32(c.R) && g>>8 == uint32(c.G) && bb>>8 == uint32(c.B) {
				colored++
			}
			if r>>8 < 40 && g>>8 < 40 && bb>>8 < 40 {
				dark++
			}
		}
	}
	if colored < 200 || dark < 500 {
		t.Fatalf("colored %d dark %d pixels: nothing drawn?", colored, dark)
	}
	if dir := os.Getenv("PLOT_OUT"); dir != "" {
		os.WriteFile(dir+"/lines.png", b, 0o644)
	}
	bars, err := Bars("Figure 1: reverse-KL", "reverse KL (nats)", []string{"MLE", "MixN", "MixNR"},
		[]Series{{Name: "greedy", Y: []float64{12.5, 10.1, 9.7}, Lo: []float64{11, 9, 8.8}, Hi: []float64{14, 11, 10.5}},
			{Name: "top-k50-p0.7", Y: []float64{14.2, 12.0, 11.1}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(bytes.NewReader(bars)); err != nil {
		t.Fatal(err)
	}
	if dir := os.Getenv("PLOT_OUT"); dir != "" {
		os.WriteFile(dir+"/bars.png", bars, 0o644)
	}
}

func TestErrors(t *testing.T) {
	if _, err := Lines("t", "x", "y", nil); err == nil {
		t.Fatal("no series accepted")
	}
	if _, err := Lines("t", "x", "y", []Series{{X: []float64{1}, Y: []float64{1, 2}}}); err == nil {
		t.Fatal("length mismatch accepted")
	}
	if _, err := Bars("t", "y", []string{"a", "b"}, []Series{{Y: []float64{1}}}); err == nil {
		t.Fatal("bars length mismatch accepted")
	}
}

func TestSideBySide(t *testing.T) {
	a, err := LinesImage(Options{Width: 300, Height: 200}, "a", "x", "y", []Series{{Name: "s", X: []float64{0, 1}, Y: []float64{1, 2}}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := BarsImage(Options{Width: 400, Height: 250}, "b", "y", []string{"m"}, []Series{{Name: "s", Y: []float64{1}}})
	if err != nil {
		t.Fatal(err)
	}
	im := SideBySide(a, b)
	if im.Bounds().Dx() != 700 || im.Bounds().Dy() != 250 {
		t.Fatalf("size %v", im.Bounds())
	}
	if im.RGBAAt(150, 100) != a.RGBAAt(150, 100) || im.RGBAAt(300+200, 120) != b.RGBAAt(200, 120) || im.RGBAAt(10, 240) != white {
		t.Fatal("panels misplaced")
	}
	if png, err := EncodePNG(im); err != nil || len(png) < 8 || string(png[1:4]) != "PNG" {
		t.Fatalf("encode: %v", err)
	}
}
