package parallel

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// A pool of helper goroutines runs the parallel loops. Starting a goroutine on an idle
// core costs a wake-up of that core: about 100 µs on the virtual machines this project
// runs on, as long as a layernorm or a small matrix product itself, and a training step has
// hundreds of such loops. The helpers instead spin for spinFor after each loop, waiting for
// the next one, before they sleep; after idleExit asleep they exit. One loop uses the pool at a time; a loop started while
// the pool is busy (from inside another loop, or from another goroutine) falls back to
// starting goroutines. Correctness never depends on a helper showing up: the caller's
// goroutine takes every task that no helper has claimed, and waits only for claimed tasks.

// spinFor is how long an idle helper polls for work before it sleeps.
const spinFor = 200 * time.Microsecond

// idleExit (nanoseconds; a variable so tests can shorten it) is how long a helper sleeps
// without work before it leaves the pool and exits; the next loop that wants it starts a new
// one. A training step runs a loop every few milliseconds, so helpers stay while a run lasts
// and are gone a moment after it.
var idleExit atomic.Int64

func init() { idleExit.Store(int64(2 * time.Second)) }

var pool struct {
	inUse   atomic.Bool         // a loop owns the pool
	seq     atomic.Uint64       // incremented when job changes
	job     atomic.Pointer[job] // the running loop, nil between loops
	mu      sync.Mutex          // guards helpers
	helpers atomic.Pointer[[]*helper]
}

type helper struct {
	wake     chan struct{} // a token wakes the helper from sleep
	sleeping atomic.Bool
}

// job is one loop: tasks [0, n) handed out in order; worker ids 1.. go to helpers.
type job struct {
	n       int
	workers int // most goroutines, the caller's included
	fn      func(worker, task int)
	next    atomic.Int64 // next task to hand out
	done    atomic.Int64 // tasks finished
	ids     atomic.Int64 // worker ids handed out to helpers
}

// work runs tasks of j as worker id until none is left to claim.
func (j *job) work(id int) {
	for {
		i := int(j.next.Add(1) - 1)
		if i >= j.n {
			return
		}
		j.run(id, i)
	}
}

// run runs one task and counts it even when fn does not return normally (a panic, or
// runtime.Goexit from t.Fatal), so that the caller never waits for it forever.
func (j *job) run(id, i int) {
	defer j.done.Add(1)
	j.fn(id, i)
}

// helpersFor returns at least k helpers (k ≤ GOMAXPROCS-1), starting missing ones.
func helpersFor(k int) []*helper {
	if hs := pool.helpers.Load(); hs != nil && len(*hs) >= k {
		return *hs
	}
	pool.mu.Lock()
	defer pool.mu.Unlock()
	var hs []*helper
	if p := pool.helpers.Load(); p != nil {
		hs = *p
	}
	for len(hs) < k {
		h := &helper{wake: make(chan struct{}, 1)}
		hs = append(hs, h)
		go h.loop(pool.seq.Load())
	}
	pool.helpers.Store(&hs)
	return hs
}

// loop is a helper's life: wait for a new job, take part if it still wants workers; leave
// after idleExit without one.
func (h *helper) loop(last uint64) {
	// However the helper ends (idle, or runtime.Goexit in a task), it leaves the pool, and the
	// next loop that wants it starts another.
	defer h.leave()
	for {
		var ok bool
		if last, ok = h.await(last); !ok {
			return
		}
		j := pool.job.Load()
		if j == nil {
			continue // that loop has already finished
		}
		if id := int(j.ids.Add(1)); id < j.workers {
			j.work(id)
		}
	}
}

// await polls pool.seq until it differs from last, sleeping after spinFor without work, and
// returns the new value; false when the helper has left the pool after idleExit asleep.
func (h *helper) await(last uint64) (uint64, bool) {
	start := time.Now()
	for i := 1; ; i++ {
		if s := pool.seq.Load(); s != last {
			return s, true
		}
		if i%64 != 0 {
			continue
		}
		if time.Since(start) < spinFor {
			runtime.Gosched() // let other goroutines of this process have the core
			continue
		}
		// Announce sleep, then look once more: a job published after the look finds
		// sleeping set and sends a token.
		h.sleeping.Store(true)
		if s := pool.seq.Load(); s != last {
			h.sleeping.Store(false)
			return s, true
		}
		idle := time.NewTimer(time.Duration(idleExit.Load()))
		select {
		case <-h.wake:
			idle.Stop()
		case <-idle.C:
			if h.retire(last) {
				return last, false
			}
		}
		h.sleeping.Store(false)
		start = time.Now()
	}
}

// retire reports whether h may leave: no job was published since last (else h stays and
// takes part). A loop that picks h just before it leaves sends a token nobody reads and runs
// without h: its caller takes every task no helper claims.
func (h *helper) retire(last uint64) bool {
	return pool.seq.Load() == last
}

// leave removes h from the pool's helpers.
func (h *helper) leave() {
	pool.mu.Lock()
	defer pool.mu.Unlock()
	var hs []*helper
	if p := pool.helpers.Load(); p != nil {
		for _, x := range *p {
			if x != h {
				hs = append(hs, x)
			}
		}
	}
	pool.helpers.Store(&hs)
}

// poolTasks runs fn over tasks [0, n) on the caller and up to w-1 helpers and reports
// whether it could (false: the pool is busy, nothing was run).
func poolTasks(n, w int, fn func(worker, task int)) bool {
	if !pool.inUse.CompareAndSwap(false, true) {
		return false
	}
	defer pool.inUse.Store(false)
	w = min(w, n, runtime.GOMAXPROCS(0))
	hs := helpersFor(w - 1)
	j := &job{n: n, workers: w, fn: fn}
	pool.job.Store(j)
	// Drop the loop's closure (and what it captured) once it is over, also when a task on
	// this goroutine panics, rather than at the next loop; a helper that wakes late finds no
	// job.
	defer pool.job.CompareAndSwap(j, nil)
	pool.seq.Add(1)
	for _, h := range hs[:w-1] {
		if h.sleeping.Load() {
			select {
			case h.wake <- struct{}{}:
			default:
			}
		}
	}
	j.work(0)
	for j.done.Load() < int64(n) {
		runtime.Gosched()
	}
	return true
}
