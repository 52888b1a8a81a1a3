package judge

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/cpo-toolchain/cpo/pkg/shard"
)

// Item is a generation to judge, with where it was read from ("file row N") for messages.
type Item struct {
	Gen   shard.Generation
	Where string
}

// CheckItems reports the first generation without a ground truth (empty reference text), or
// with an empty id, naming where it was read.
func CheckItems(items []Item) error {
	for _, it := range items {
		if it.Gen.ID == "" {
			return fmt.Errorf("%s: generation with an empty id", it.Where)
		}
		if it.Gen.Reference == "" {
			return fmt.Errorf("%s: generation %q (model %s, decoding %s) has no ground truth (empty reference); cpo-generate copies it from the example, or pass --references",
				it.Where, it.Gen.ID, it.Gen.ModelName, it.Gen.Decoding)
		}
	}
	return nil
}

// Stats counts what a run did. Asked is the number of verdicts needed (two per generation);
// Calls the HTTP requests sent (Retried of them retries); Cached the verdicts answered from
// the cache (or shared with an identical question asked at the same time); Failed the
// verdicts that ended in an error (not those cut short by an interrupt or by another
// request's fatal error); Unparsed those whose answer was not exactly A or B (asked, cached or
// shared alike).
type Stats struct {
	Asked, Calls, Cached, Retried, Failed, Unparsed int64
}

func (s Stats) String() string {
	return fmt.Sprintf("verdicts %d: calls made %d (retries %d), answered from cache %d, failed %d, unparsed %d",
		s.Asked, s.Calls, s.Retried, s.Cached, s.Failed, s.Unparsed)
}

// RemoteRun judges generations with a Remote judge.
type RemoteRun struct {
	Judge       *Remote
	Template    Template
	Cache       *Cache // nil: no cache
	Concurrency int    // parallel requests (default 4)
	// Query, when not nil, turns a generation's prompt into the query the template shows
	// ({query}); nil shows the prompt as it is. cpo-judge uses prep.DollyQuery, so that a
	// prompt in the Dolly training format is shown as its instruction (the paper's "Query").
	Query func(prompt string) string
	// Progress, if set, is called once per finished verdict (from several goroutines).
	Progress func()
}

type verdict struct {
	v, raw string
}

// flight is one question being asked; identical questions wait for the first.
type flight struct {
	done chan struct{}
	res  verdict
	err  error
}

// Run asks every item's two questions and returns one judgment per item, in input order.
// A verdict that fails after its retries is recorded as "error" with the error text, and the
// item's outcome is "invalid"; it is not cached, so a rerun asks it again. Run stops early
// and returns an error when the run cannot go on (IsFatal: the endpoint unreachable, a 401,
// 403 or 404, or ctx cancelled); answers received until then are in the cache.
func (rr *RemoteRun) Run(ctx context.Context, items []Item) ([]shard.Judgment, Stats, error) {
	if err := rr.Template.Check(); err != nil {
		return nil, Stats{}, err
	}
	if err := CheckItems(items); err != nil {
		return nil, Stats{}, err
	}
	rr.Judge.Init()
	calls0, retries0 := rr.Judge.Calls(), rr.Judge.Retried()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n := len(items)
	res := make([]verdict, 2*n)
	tplID, tplHash := rr.Template.ID(), rr.Template.Hash()
	var cached, failed, unparsed atomic.Int64
	var fatalOnce sync.Once
	var fatal error
	var mu sync.Mutex
	inflight := map[string]*flight{}

	ask := func(task int) {
		it := items[task/2].Gen
		a, b := it.Text, it.Reference
		if task%2 == 1 {
			a, b = b, a
		}
		query := it.Prompt
		if rr.Query != nil {
			query = rr.Query(query)
		}
		key := CacheKey(rr.Judge.Model, tplHash, query, a, b)
		if rr.Cache != nil {
			if e, ok := rr.Cache.Get(key); ok {
				cached.Add(1)
				if e.Verdict == VerdictUnparsed {
					unparsed.Add(1)
				}
				res[task] = verdict{e.Verdict, e.Raw}
				return
			}
		}
		mu.Lock()
		if f, ok := inflight[key]; ok {
			mu.Unlock()
			<-f.done
			if f.err == nil {
				cached.Add(1)
				if f.res.v == VerdictUnparsed {
					unparsed.Add(1)
				}
				res[task] = f.res
				return
			}
			res[task] = verdict{VerdictError, f.err.Error()}
			if !interrupted(ctx, f.err) {
				failed.Add(1)
			}
			return
		}
		f := &flight{done: make(chan struct{})}
		inflight[key] = f
		mu.Unlock()
		defer close(f.done)
		prompt, err := rr.Template.Render(query, a, b)
		if err != nil {
			f.err = err
		} else {
			var raw string
			raw, f.err = rr.Judge.Ask(ctx, prompt)
			if f.err == nil {
				f.res = verdict{ParseVerdict(raw), raw}
				if rr.Cache != nil {
					if err := rr.Cache.Put(CacheEntry{Key: key, Verdict: f.res.v, Raw: raw, Judge: rr.Judge.Model}); err != nil {
						f.err = &FatalError{err}
					}
				}
			}
		}
		if f.err != nil {
			if IsFatal(f.err) {
				fatalOnce.Do(func() { fatal = f.err; cancel() })
			}
			if !interrupted(ctx, f.err) {
				failed.Add(1)
			}
			res[task] = verdict{VerdictError, f.err.Error()}
			return
		}
		if f.res.v == VerdictUnparsed {
			unparsed.Add(1)
		}
		res[task] = f.res
	}

	workers := rr.Concurrency
	if workers <= 0 {
		workers = 4
	}
	tasks := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for t := range tasks {
				if ctx.Err() == nil {
					ask(t)
				}
				if rr.Progress != nil {
					rr.Progress()
				}
			}
		}()
	}
feed:
	for t := 0; t < 2*n; t++ {
		select {
		case tasks <- t:
		case <-ctx.Done():
			break feed
		}
	}
	close(tasks)
	wg.Wait()
	st := Stats{Asked: int64(2 * n), Calls: rr.Judge.Calls() - calls0, Retried: rr.Judge.Retried() - retries0,
		Cached: cached.Load(), Failed: failed.Load(), Unparsed: unparsed.Load()}
	if fatal == nil && ctx.Err() != nil {
		fatal = ctx.Err()
	}
	if fatal != nil {
		return nil, st, fatal
	}
	out := make([]shard.Judgment, n)
	for i, it := range items {
		out[i] = MakeJudgment(it.Gen, rr.Judge.Model, tplID, res[2*i], res[2*i+1])
	}
	return out, st, nil
}

// interrupted reports whether err only says that the run was stopped (ctx cancelled: an
// interrupt, or a fatal error elsewhere) while the question was asked: not a failed verdict.
func interrupted(ctx context.Context, err error) bool {
	return ctx.Err() != nil && errors.Is(err, context.Canceled)
}

// MakeJudgment builds the judgment row of a generation from its two verdicts (first: the
// generation shown as A; second: shown as B).
func MakeJudgment(g shard.Generation, judgeName, templateID string, first, second verdict) shard.Judgment {
	return shard.Judgment{ID: g.ID, Model: g.Model, ModelName: g.ModelName, Decoding: g.Decoding, Sample: g.Sample,
		Judge: judgeName, Template: templateID, GenFirst: first.v, GenSecond: second.v, RawFirst: first.raw, RawSecond: second.raw,
		Outcome: Outcome(first.v, second.v)}
}
