// Package parallel runs loops over the cores: a static parallel-for and a dynamically
// scheduled task loop. Both run inline on the caller's goroutine when only one worker is
// asked for, so small problems pay nothing; otherwise the caller and a pool of helper
// goroutines that spin briefly between loops share the work (see pool.go), or, when the
// pool is in use by another loop, freshly started goroutines.
package parallel

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// Workers returns the number of workers to use when the caller asks for n (n <= 0 means
// GOMAXPROCS).
func Workers(n int) int {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	if n < 1 {
		n = 1
	}
	return n
}

// For splits [0, n) into at most workers contiguous ranges of near-equal size and calls
// fn(lo, hi) for each, in parallel, returning when all have finished. workers <= 0 means
// GOMAXPROCS. Ranges are never empty; fn must be safe for concurrent use on disjoint ranges.
func For(n, workers int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	w := Workers(workers)
	if w > n {
		w = n
	}
	if w == 1 {
		fn(0, n)
		return
	}
	if poolTasks(w, w, func(_, t int) { fn(t*n/w, (t+1)*n/w) }) {
		return
	}
	var wg sync.WaitGroup
	wg.Add(w - 1)
	for t := 1; t < w; t++ {
		lo, hi := t*n/w, (t+1)*n/w
		go func() {
			defer wg.Done()
			fn(lo, hi)
		}()
	}
	fn(0, n/w)
	wg.Wait()
}

// Tasks calls fn(worker, task) for every task in [0, n), handing tasks out in increasing order
// to at most workers goroutines as each becomes free (dynamic scheduling, which keeps both
// cores busy when one of them is slowed by another process). worker is in [0, workers) and
// identifies the goroutine, so fn may keep per-worker scratch buffers indexed by it.
// workers <= 0 means GOMAXPROCS.
func Tasks(n, workers int, fn func(worker, task int)) {
	if n <= 0 {
		return
	}
	w := Workers(workers)
	if w > n {
		w = n
	}
	if w == 1 {
		for i := 0; i < n; i++ {
			fn(0, i)
		}
		return
	}
	if poolTasks(n, w, fn) {
		return
	}
	var next atomic.Int64
	run := func(worker int) {
		for {
			i := int(next.Add(1) - 1)
			if i >= n {
				return
			}
			fn(worker, i)
		}
	}
	var wg sync.WaitGroup
	wg.Add(w - 1)
	for t := 1; t < w; t++ {
		go func() {
			defer wg.Done()
			run(t)
		}()
	}
	run(0)
	wg.Wait()
}
