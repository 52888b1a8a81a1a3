package optim

import (
	"fmt"
	"math"
)

// Schedule kinds.
const (
	Constant = "constant"
	Linear   = "linear"
	Cosine   = "cosine"
)

// Schedules lists the schedule kinds.
var Schedules = []string{Constant, Linear, Cosine}

// Schedule gives the learning rate of every step: a linear warm-up from Peak/Warmup to Peak over
// the first Warmup steps, then Peak (constant), or a decay from Peak to MinRatio*Peak reached at
// step Total (linear or cosine, as Hugging Face's get_*_schedule_with_warmup with a floor).
type Schedule struct {
	Kind     string  // constant, linear or cosine
	Peak     float64 // the learning rate after warm-up
	Warmup   int     // warm-up steps (0: none)
	Total    int     // total steps of the run (needed by linear and cosine)
	MinRatio float64 // floor of the decay as a fraction of Peak (0 decays to 0)
}

// Validate reports a schedule that cannot be computed.
func (s Schedule) Validate() error {
	switch s.Kind {
	case Constant:
	case Linear, Cosine:
		if s.Total <= 0 {
			return fmt.Errorf("schedule %s needs the total number of steps", s.Kind)
		}
	default:
		return fmt.Errorf("unknown schedule %q (want one of %v)", s.Kind, Schedules)
	}
	if s.Peak < 0 || s.Warmup < 0 || s.MinRatio < 0 || s.MinRatio > 1 {
		return fmt.Errorf("schedule: bad values %+v", s)
	}
	return nil
}

// LR is the learning rate of the update with 0-based index step.
func (s Schedule) LR(step int) float64 {
	if step < s.Warmup {
		return s.Peak * float64(step+1) / float64(s.Warmup)
	}
	if s.Kind == Constant {
		return s.Peak
	}
	span := s.Total - s.Warmup
	p := 1.0
	if span > 0 {
		p = min(1, float64(step-s.Warmup)/float64(span))
	}
	var f float64
	if s.Kind == Linear {
		f = 1 - p
	} else {
		f = 0.5 * (1 + math.Cos(math.Pi*p))
	}
	return s.Peak * (s.MinRatio + (1-s.MinRatio)*f)
}
