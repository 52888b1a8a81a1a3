package model

import (
	"math"
	"testing"
)

// tanhf is checked against math.Tanh (the plain reference).
func TestTanhf(t *testing.T) {
	for x := -40.0; x <= 40; x += 0.0013 {
		if d := math.Abs(float64(tanhf(float32(x))) - math.Tanh(float64(float32(x)))); d > 2e-7 {
			t.Fatalf("tanhf(%g) off by %.3g", x, d)
		}
	}
	if tanhf(1000) != 1 || tanhf(-1000) != -1 {
		t.Fatal("tanhf does not saturate")
	}
}
