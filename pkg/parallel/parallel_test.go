package parallel

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
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

// runCount runs Tasks(n, w) and fails unless every task ran exactly once.
func runCount(t *testing.T, n, w int) {
	t.Helper()
	hits := make([]int32, n)
	Tasks(n, w, func(worker, task int) {
		if worker < 0 || worker >= Workers(w) {
			t.Errorf("worker %d out of range for w=%d", worker, w)
		}
		atomic.AddInt32(&hits[task], 1)
	})
	for i, h := range hits {
		if h != 1 {
			t.Fatalf("n=%d w=%d: task %d ran %d times", n, w, i, h)
		}
	}
}

// TestPoolSleepAndWake runs loops separated by pauses longer than the helpers' spinning,
// so that they go to sleep and must be woken (or left out) by the next loop.
func TestPoolSleepAndWake(t *testing.T) {
	for i := 0; i < 20; i++ {
		runCount(t, 37, 2)
		if i%4 == 0 {
			time.Sleep(2 * spinFor)
		}
	}
}

// TestPoolNestedAndConcurrent starts loops from inside loops and from several goroutines
// at once: all but one fall back to plain goroutines, and every task still runs once.
func TestPoolNestedAndConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				var inner atomic.Int64
				Tasks(6, 2, func(_, _ int) {
					For(10, 2, func(lo, hi int) { inner.Add(int64(hi - lo)) })
				})
				if inner.Load() != 60 {
					t.Errorf("nested loops covered %d of 60 items", inner.Load())
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestPoolFewerProcs runs loops asking for more workers than GOMAXPROCS, including
// GOMAXPROCS 1 after the helpers exist.
func TestPoolFewerProcs(t *testing.T) {
	runCount(t, 100, 8)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	runCount(t, 100, 8)
	For(5, 3, func(lo, hi int) {})
}

// A task that ends its goroutine with runtime.Goexit (as t.Fatal does) on a helper still
// counts as done: the loop returns and the next loop runs.
func TestGoexitInTaskDoesNotHang(t *testing.T) {
	For(4, 2, func(lo, hi int) {})
	done := make(chan struct{})
	go func() {
		defer close(done)
		Tasks(4, 2, func(w, i int) {
			if w != 0 {
				runtime.Goexit()
			}
			time.Sleep(10 * time.Millisecond)
		})
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Tasks did not return after a task called runtime.Goexit")
	}
	var n atomic.Int32
	For(8, 2, func(lo, hi int) { n.Add(int32(hi - lo)) })
	if n.Load() != 8 {
		t.Fatalf("next loop covered %d of 8", n.Load())
	}
}

// A finished loop does not stay referenced by the pool (its closure may hold large buffers).
func TestPoolDropsFinishedJob(t *testing.T) {
	big := make([]float32, 1<<20)
	Tasks(64, 2, func(_, i int) { big[i]++ })
	if j := pool.job.Load(); j != nil {
		t.Fatalf("pool still holds the finished loop (%d tasks)", j.n)
	}
}

// Idle helpers leave the pool after idleExit and the next loop starts new ones.
func TestIdleHelpersExit(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Skip("one CPU: no helpers")
	}
	defer idleExit.Store(idleExit.Load())
	idleExit.Store(int64(20 * time.Millisecond))
	var n atomic.Int64
	run := func() {
		Tasks(64, 2, func(_, i int) { n.Add(1) })
	}
	run()
	deadline := time.Now().Add(5 * time.Second)
	for {
		p := pool.helpers.Load()
		if p == nil || len(*p) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d helpers still in the pool after %v idle", len(*p), time.Duration(idleExit.Load()))
		}
		time.Sleep(5 * time.Millisecond)
	}
	run()
	if n.Load() != 128 {
		t.Fatalf("%d tasks ran, want 128", n.Load())
	}
	if p := pool.helpers.Load(); p == nil || len(*p) == 0 {
		t.Fatal("no helper started again for the next loop")
	}
}
