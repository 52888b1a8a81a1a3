package parallel

import (
	"sync"
	"sync/atomic"
	"testing"
)

func TestForCoversRangeOnce(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 7, 100, 1001} {
		for _, w := range []int{-1, 0, 1, 2, 3, 8, 2000} {
			hits := make([]int32, n)
			var calls atomic.Int32
			For(n, w, func(lo, hi int) {
				if lo >= hi {
					t.Errorf("n=%d w=%d: empty range [%d,%d)", n, w, lo, hi)
				}
				calls.Add(1)
				for i := lo; i < hi; i++ {
					atomic.AddInt32(&hits[i], 1)
				}
			})
			for i, h := range hits {
				if h != 1 {
					t.Fatalf("n=%d w=%d: index %d visited %d times", n, w, i, h)
				}
			}
			if maxW := Workers(w); n > 0 && int(calls.Load()) > maxW {
				t.Fatalf("n=%d w=%d: %d ranges for %d workers", n, w, calls.Load(), maxW)
			}
		}
	}
}

func TestTasksRunsEachTaskOnceWithValidWorker(t *testing.T) {
	for _, n := range []int{0, 1, 5, 64, 999} {
		for _, w := range []int{0, 1, 2, 4} {
			hits := make([]int32, n)
			var mu sync.Mutex
			seen := map[int]bool{}
			Tasks(n, w, func(worker, task int) {
				if worker < 0 || worker >= Workers(w) {
					t.Errorf("worker %d out of range for w=%d", worker, w)
				}
				mu.Lock()
				seen[worker] = true
				mu.Unlock()
				atomic.AddInt32(&hits[task], 1)
			})
			for i, h := range hits {
				if h != 1 {
					t.Fatalf("n=%d w=%d: task %d ran %d times", n, w, i, h)
				}
			}
		}
	}
}
