package judge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cpo-toolchain/cpo/pkg/metrics"
	"github.com/cpo-toolchain/cpo/pkg/model"
	"github.com/cpo-toolchain/cpo/pkg/shard"
	"github.com/cpo-toolchain/cpo/pkg/tokenizer"
)

func TestParseVerdict(t *testing.T) {
	for raw, want := range map[string]string{
		"A": "A", " B\n": "B", `"A"`: "A", "B.": "B", "(A)": "A", "**B**": "B", "“A”": "A", " 'B'!": "B",
		"a": "unparsed", "Response A": "unparsed", "A or B": "unparsed", "I prefer A": "unparsed", "": "unparsed",
		"AB": "unparsed", "A\nB": "unparsed",
	} {
		if got := ParseVerdict(raw); got != want {
			t.Errorf("ParseVerdict(%q) = %q, want %q", raw, got, want)
		}
	}
}

func TestOutcome(t *testing.T) {
	for _, tc := range [][3]string{
		{"A", "B", "win"}, {"B", "A", "loss"}, {"A", "A", "tie"}, {"B", "B", "tie"},
		{"unparsed", "B", "invalid"}, {"A", "error", "invalid"},
	} {
		if got := Outcome(tc[0], tc[1]); got != tc[2] {
			t.Errorf("Outcome(%s, %s) = %s, want %s", tc[0], tc[1], got, tc[2])
		}
	}
}

func TestTemplates(t *testing.T) {
	got, err := Dolly.Render("Q?", "ra", "rb")
	if err != nil {
		t.Fatal(err)
	}
	want := "For the following query to a chatbot, which response is more helpful?\n Query: Q?\n Response A: ra\n Response B: rb\n State only \"A\" or \"B\" to indicate which response is more helpful.\n More helpful:"
	if got != want {
		t.Fatalf("dolly:\n%q\nwant\n%q", got, want)
	}
	if got, _ := Wiki.Render("pre", "x", "y"); !strings.Contains(got, "Prefix: pre\n Continuation A: x\n Continuation B: y\n") || !strings.HasSuffix(got, "Better:") {
		t.Fatalf("wiki: %q", got)
	}
	// Values are inserted verbatim, never scanned for placeholders.
	if got, _ := (Template{Name: "t", Text: "{query}|{response_a}|{response_b} {{json}}"}).Render("{response_b}", "}", "{"); got != "{response_b}|}|{ {json}" {
		t.Fatalf("escapes: %q", got)
	}
	for text, msg := range map[string]string{
		"{query} {response_a}":                  "lacks the placeholder(s) {response_b}",
		"{query} {response_a} {response_b} {x}": "unknown placeholder {x}",
		"{query} {response_a} {response_b} {":   "unclosed",
		"{query} {response_a} {response_b} }":   "unmatched",
	} {
		if err := (Template{Name: "t", Text: text}).Check(); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%q: %v, want %q", text, err, msg)
		}
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "t.txt")
	os.WriteFile(p, []byte("Which? {query} 1: {response_a} 2: {response_a}"), 0o644)
	if _, err := LoadTemplate(p); err == nil || !strings.Contains(err.Error(), "{response_b}") {
		t.Fatalf("file template without {response_b}: %v", err)
	}
	if _, err := LoadTemplate(filepath.Join(dir, "none")); err == nil {
		t.Fatal("missing template file accepted")
	}
	if a, b := Dolly.ID(), (Template{Name: "dolly", Text: Dolly.Text + " "}).ID(); a == b || !strings.HasPrefix(a, "dolly:") {
		t.Fatalf("template ids %q %q", a, b)
	}
}

// fake is an OpenAI-compatible server. The judged texts say how it behaves:
// "good" is preferred over the other response, "bad" loses, "biased" makes it always answer A,
// "garbage" gets a chatty answer, "ratelimit" gets one 429 with Retry-After first, "flaky" two
// 500s first, "slow" one answer slower than the client's timeout first.
type fake struct {
	mu       sync.Mutex
	perQ     map[string]int // question → requests seen
	answered map[string]int // question → answers sent
	calls    atomic.Int64
	onCall   func(n int64)
	key      string
}

func newFake() *fake { return &fake{perQ: map[string]int{}, answered: map[string]int{}} }

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := f.calls.Add(1)
	if f.onCall != nil {
		f.onCall(n)
	}
	if r.URL.Path != "/v1/chat/completions" {
		http.Error(w, "no such path", 404)
		return
	}
	if f.key != "" && r.Header.Get("Authorization") != "Bearer "+f.key {
		http.Error(w, `{"error":"bad key"}`, 401)
		return
	}
	var req chatRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Messages) != 1 || req.Temperature != 0 {
		http.Error(w, "bad request", 400)
		return
	}
	q := req.Messages[0].Content
	f.mu.Lock()
	f.perQ[q]++
	k := f.perQ[q]
	f.mu.Unlock()
	a := between(q, "Response A: ", "\n")
	b := between(q, "Response B: ", "\n")
	has := func(s string) bool { return strings.Contains(a, s) || strings.Contains(b, s) }
	switch {
	case has("ratelimit") && k == 1:
		w.Header().Set("Retry-After", "2")
		http.Error(w, "slow down", 429)
		return
	case has("flaky") && k <= 2:
		http.Error(w, "oops", 500)
		return
	case has("slow") && k == 1:
		time.Sleep(300 * time.Millisecond)
		if r.Context().Err() != nil {
			return // the client gave up: this answer is never received
		}
	}
	ans := "B"
	switch {
	case has("garbage"):
		ans = "Both are fine, really."
	case has("biased"):
		ans = "A"
	case strings.Contains(a, "good"), strings.Contains(b, "bad"):
		ans = "A"
	}
	f.mu.Lock()
	f.answered[q]++
	f.mu.Unlock()
	json.NewEncoder(w).Encode(map[string]any{"choices": []any{map[string]any{"message": map[string]any{"role": "assistant", "content": " " + ans + "\n"}}}})
}

func between(s, a, b string) string {
	i := strings.Index(s, a)
	if i < 0 {
		return ""
	}
	s = s[i+len(a):]
	if j := strings.Index(s, b); j >= 0 {
		return s[:j]
	}
	return s
}

func items(kinds ...string) []Item {
	var out []Item
	for i, k := range kinds {
		out = append(out, Item{Gen: shard.Generation{ID: fmt.Sprintf("p%d", i), Prompt: fmt.Sprintf("prompt %d", i), Reference: fmt.Sprintf("the reference %d", i),
			Model: "fp", ModelName: "m", Decoding: "greedy", Text: "answer " + k}, Where: fmt.Sprintf("g.parquet row %d", i)})
	}
	return out
}

type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

func remote(url string, sl *sleeps) *Remote {
	return &Remote{BaseURL: url + "/v1", Model: "judge-1", Timeout: 100 * time.Millisecond, Retries: 4,
		BaseDelay: 10 * time.Millisecond, MaxDelay: 50 * time.Millisecond, Sleep: sl.sleep}
}

func TestRemoteRun(t *testing.T) {
	f := newFake()
	srv := httptest.NewServer(f)
	defer srv.Close()
	kinds := []string{"good", "bad", "biased", "garbage", "ratelimit good", "flaky bad", "slow good", "good", "bad"}
	its := items(kinds...)
	// Two generations ask the same questions: asked once, shared.
	its = append(its, its[0])
	its[len(its)-1].Gen.Sample = 1
	cache, err := OpenCache(filepath.Join(t.TempDir(), "c", "cache.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	sl := &sleeps{}
	var progress atomic.Int64
	rr := &RemoteRun{Judge: remote(srv.URL, sl), Template: Dolly, Cache: cache, Concurrency: 3, Progress: func() { progress.Add(1) }}
	js, st, err := rr.Run(context.Background(), its)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"win", "loss", "tie", "invalid", "win", "loss", "win", "win", "loss", "win"}
	if len(js) != len(its) {
		t.Fatalf("%d judgments for %d generations", len(js), len(its))
	}
	for i, j := range js {
		if j.Outcome != want[i] || j.ID != its[i].Gen.ID || j.Sample != its[i].Gen.Sample || j.Judge != "judge-1" || j.Template != Dolly.ID() {
			t.Errorf("judgment %d: %+v, want outcome %s", i, j, want[i])
		}
	}
	if js[3].GenFirst != "unparsed" || !strings.Contains(js[3].RawFirst, "Both are fine") {
		t.Errorf("garbage: %+v", js[3])
	}
	// 9 distinct generations = 18 questions; extra requests in both orders: 2 (429) + 4 (two
	// 500s) + 2 (slow) = 26 calls; the duplicate generation's 2 verdicts are shared.
	if st.Asked != 20 || st.Calls != 26 || st.Retried != 8 || st.Cached != 2 || st.Failed != 0 || st.Unparsed != 2 {
		t.Fatalf("stats %+v", st)
	}
	if progress.Load() != 20 {
		t.Fatalf("progress %d", progress.Load())
	}
	for q, n := range f.answered {
		if n != 1 {
			t.Errorf("question answered %d times: %q", n, q)
		}
	}
	// Retry-After: 2 was honoured (the backoff alone is at most 50 ms).
	var sawRetryAfter bool
	for _, d := range sl.d {
		if d >= 2*time.Second {
			sawRetryAfter = true
		}
		if d > 2*time.Second {
			t.Errorf("waited %v", d)
		}
	}
	if !sawRetryAfter {
		t.Errorf("Retry-After not honoured: sleeps %v", sl.d)
	}
	if cache.Len() != 18 {
		t.Fatalf("cache has %d answers", cache.Len())
	}
	cache.Close()

	// A rerun in a new process (cache reopened) makes no call and gives the same judgments.
	cache2, err := OpenCache(cache.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer cache2.Close()
	rr2 := &RemoteRun{Judge: remote(srv.URL, &sleeps{}), Template: Dolly, Cache: cache2, Concurrency: 4}
	before := f.calls.Load()
	js2, st2, err := rr2.Run(context.Background(), its)
	if err != nil {
		t.Fatal(err)
	}
	if f.calls.Load() != before || st2.Calls != 0 || st2.Cached != 20 {
		t.Fatalf("rerun made calls: %+v", st2)
	}
	for i := range js {
		if js[i] != js2[i] {
			t.Fatalf("rerun judgment %d differs: %+v vs %+v", i, js[i], js2[i])
		}
	}
	// Another template is another question.
	rr3 := &RemoteRun{Judge: remote(srv.URL, &sleeps{}), Template: Wiki, Cache: cache2, Concurrency: 2}
	_, st3, err := rr3.Run(context.Background(), items("good"))
	if err != nil || st3.Calls != 2 {
		t.Fatalf("other template: %+v %v", st3, err)
	}
}

func TestRemoteKillAndResume(t *testing.T) {
	f := newFake()
	srv := httptest.NewServer(f)
	defer srv.Close()
	var kinds []string
	for i := 0; i < 40; i++ {
		kinds = append(kinds, []string{"good", "bad", "biased"}[i%3]+fmt.Sprint(i))
	}
	its := items(kinds...)
	path := filepath.Join(t.TempDir(), "cache.jsonl")
	cache, _ := OpenCache(path)
	ctx, cancel := context.WithCancel(context.Background())
	f.onCall = func(n int64) {
		if n == 25 {
			cancel() // the process is killed while requests are in flight
		}
	}
	_, _, err := (&RemoteRun{Judge: remote(srv.URL, &sleeps{}), Template: Dolly, Cache: cache, Concurrency: 4}).Run(ctx, its)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("killed run: %v", err)
	}
	cache.Close()
	// Simulate a kill in the middle of a cache write: a partial last line.
	fh, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	fh.WriteString(`{"key":"abc","verd`)
	fh.Close()
	f.onCall = nil
	cache, err = OpenCache(path)
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	done := cache.Len()
	if done < 10 || done >= 80 || cache.Skipped != 1 {
		t.Fatalf("after the kill the cache has %d answers (%d skipped lines)", done, cache.Skipped)
	}
	js, st, err := (&RemoteRun{Judge: remote(srv.URL, &sleeps{}), Template: Dolly, Cache: cache, Concurrency: 4}).Run(context.Background(), its)
	if err != nil {
		t.Fatal(err)
	}
	if st.Cached != int64(done) || st.Calls != int64(80-done) {
		t.Fatalf("resume: %+v with %d cached answers", st, done)
	}
	for i, j := range js {
		want := []string{"win", "loss", "tie"}[i%3]
		if j.Outcome != want {
			t.Fatalf("judgment %d: %s, want %s", i, j.Outcome, want)
		}
	}
	if cache.Len() != 80 {
		t.Fatalf("cache %d", cache.Len())
	}
}

func TestRemoteFailures(t *testing.T) {
	// Unreachable: a port nothing listens on. The circuit opens after MaxConnFailures.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	r := remote("http://"+addr, &sleeps{})
	r.MaxConnFailures = 5
	_, st, err := (&RemoteRun{Judge: r, Template: Dolly, Concurrency: 4}).Run(context.Background(), items("a", "b", "c", "d", "e", "f", "g", "h"))
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "--base-url") {
		t.Fatalf("unreachable: %v", err)
	}
	if st.Calls > 5+4 {
		t.Fatalf("retry storm: %d calls", st.Calls)
	}

	// A wrong key stops the run at once, and the key never shows in the error.
	f := newFake()
	f.key = "right-key"
	srv := httptest.NewServer(f)
	defer srv.Close()
	r = remote(srv.URL, &sleeps{})
	r.APIKey = "sk-secret-123"
	_, st, err = (&RemoteRun{Judge: r, Template: Dolly, Concurrency: 2}).Run(context.Background(), items("a", "b", "c", "d", "e"))
	if !IsFatal(err) || !strings.Contains(err.Error(), "401") || strings.Contains(err.Error(), "sk-secret") || st.Calls > 3 {
		t.Fatalf("bad key: %v (%d calls)", err, st.Calls)
	}

	// A server that always fails: every verdict is "error" after bounded retries, no call is
	// cached, and the run ends with the judgments marked invalid.
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", 503) }))
	defer bad.Close()
	cache, _ := OpenCache(filepath.Join(t.TempDir(), "c.jsonl"))
	defer cache.Close()
	r = remote(bad.URL, &sleeps{})
	r.Retries = 2
	js, st, err := (&RemoteRun{Judge: r, Template: Dolly, Cache: cache, Concurrency: 2}).Run(context.Background(), items("a", "b"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Calls != 4*3 || st.Failed != 4 || cache.Len() != 0 {
		t.Fatalf("always 503: %+v, cache %d", st, cache.Len())
	}
	if js[0].Outcome != "invalid" || js[0].GenFirst != "error" || !strings.Contains(js[0].RawFirst, "503") {
		t.Fatalf("judgment %+v", js[0])
	}

	// A generation without a ground truth.
	its := items("a", "b")
	its[1].Gen.Reference = ""
	if _, _, err := (&RemoteRun{Judge: r, Template: Dolly}).Run(context.Background(), its); err == nil || !strings.Contains(err.Error(), "g.parquet row 1") {
		t.Fatalf("empty reference: %v", err)
	}
}

func TestRetryAfterParse(t *testing.T) {
	if d := retryAfter("3"); d != 3*time.Second {
		t.Fatal(d)
	}
	if d := retryAfter(time.Now().Add(10 * time.Second).UTC().Format(http.TimeFormat)); d < 8*time.Second || d > 11*time.Second {
		t.Fatal(d)
	}
	if d := retryAfter("soon"); d != 0 {
		t.Fatal(d)
	}
}

func TestLikelihoodJudge(t *testing.T) {
	m, err := model.New(model.Config{Arch: "gpt2", VocabSize: 16, MaxSeqLen: 32, NLayer: 1, NHead: 2, NKVHead: 2,
		DModel: 8, DFF: 32, NormEps: 1e-5, TieEmbeddings: true, BOS: 0, EOS: 15})
	if err != nil {
		t.Fatal(err)
	}
	m.InitGPT2Style(3)
	sc := metrics.NewScorer(m)
	gen := func(id string, ids, ref []int32) Item {
		return Item{Gen: shard.Generation{ID: id, PromptIDs: []int32{1, 2}, IDs: ids, ReferenceIDs: ref, Text: "t", Reference: "r",
			Model: "fp", Decoding: "greedy"}, Where: "g row " + id}
	}
	its := []Item{gen("0", []int32{3, 4, 5}, []int32{6, 7}), gen("1", []int32{6, 7}, []int32{3, 4, 5}), gen("2", []int32{9, 9}, []int32{9, 9})}
	l := &Likelihood{Scorer: sc, Texts: &metrics.Texts{}, Name: "likelihood:fp", Chunk: 2}
	js, _, err := l.Run(context.Background(), its)
	if err != nil {
		t.Fatal(err)
	}
	lp, _ := sc.Score([][]int32{{1, 2}, {1, 2}}, [][]int32{{3, 4, 5}, {6, 7}})
	first := "win"
	if lp[0].Mean() < lp[1].Mean() {
		first = "loss"
	}
	second := map[string]string{"win": "loss", "loss": "win"}[first]
	if js[0].Outcome != first || js[1].Outcome != second || js[2].Outcome != "tie" {
		t.Fatalf("outcomes %s %s %s, want %s %s tie (means %g %g)", js[0].Outcome, js[1].Outcome, js[2].Outcome, first, second, lp[0].Mean(), lp[1].Mean())
	}
	js2, _, _ := l.Run(context.Background(), its)
	for i := range js {
		if js[i] != js2[i] {
			t.Fatal("likelihood judge not deterministic")
		}
	}
	bad := []Item{gen("0", []int32{3}, []int32{3}), gen("1", []int32{3}, []int32{99})}
	if _, _, err := l.Run(context.Background(), bad); err == nil || !strings.Contains(err.Error(), "g row 1: reference") {
		t.Fatalf("bad token: %v", err)
	}
}

func TestReadAndJoinReferences(t *testing.T) {
	dir := t.TempDir()
	gw, err := shard.NewWriter[shard.Generation](filepath.Join(dir, "g.parquet"), nil, shard.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		gw.Write(shard.Generation{ID: fmt.Sprintf("e%d", i), PromptIDs: []int32{1}, IDs: []int32{2}, Model: "m", Decoding: "greedy", Tokenizer: "tk", Text: "x"})
	}
	if err := gw.Close(); err != nil {
		t.Fatal(err)
	}
	its, err := ReadItems([]string{filepath.Join(dir, "g.parquet")}, nil)
	if err != nil || len(its) != 3 || !strings.HasSuffix(its[2].Where, "g.parquet row 2") {
		t.Fatalf("read: %v %+v", err, its)
	}
	if err := CheckItems(its); err == nil || !strings.Contains(err.Error(), "g.parquet row 0") || !strings.Contains(err.Error(), "no ground truth") {
		t.Fatalf("no reference: %v", err)
	}
	ew, _ := shard.NewWriter[shard.Example](filepath.Join(dir, "e.parquet"), nil, shard.Options{})
	ew.Write(shard.Example{ID: "e0", Response: "r0", ResponseIDs: []int32{5}, Tokenizer: "tk", PromptIDs: []int32{1}},
		shard.Example{ID: "e1", Response: "r1", ResponseIDs: []int32{6}, Tokenizer: "other", PromptIDs: []int32{1}})
	if err := ew.Close(); err != nil {
		t.Fatal(err)
	}
	err = JoinReferences(its, []string{filepath.Join(dir, "e.parquet")})
	if err == nil || !strings.Contains(err.Error(), "g.parquet row 2") || !strings.Contains(err.Error(), `"e2"`) {
		t.Fatalf("missing example: %v", err)
	}
	its = its[:2]
	if err := JoinReferences(its, []string{filepath.Join(dir, "e.parquet")}); err != nil {
		t.Fatal(err)
	}
	if its[0].Gen.Reference != "r0" || len(its[0].Gen.ReferenceIDs) != 1 || its[1].Gen.Reference != "r1" || its[1].Gen.ReferenceIDs != nil {
		t.Fatalf("joined %+v", its)
	}
	if err := CheckItems(its); err != nil {
		t.Fatal(err)
	}
}

// 408 Request Timeout is a timeout the server reports itself: retried like 429 and 5xx, not
// recorded as a failed verdict.
func TestRemoteRetries408(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			http.Error(w, "request timeout", http.StatusRequestTimeout)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"choices": []any{map[string]any{"message": map[string]any{"content": "A"}}}})
	}))
	defer srv.Close()
	r := remote(srv.URL, &sleeps{})
	ans, err := r.Ask(context.Background(), "which?")
	if err != nil || ans != "A" {
		t.Fatalf("after a 408: %q, %v", ans, err)
	}
	if r.Retried() != 1 {
		t.Fatalf("%d retries, want 1", r.Retried())
	}
}

// The cache is keyed by the template's text, not by the name it was given: the same template
// file reached by another path (or the built-in template saved to a file) costs no new calls.
func TestCacheKeyedByTemplateText(t *testing.T) {
	f := newFake()
	srv := httptest.NewServer(f)
	defer srv.Close()
	cache, err := OpenCache(filepath.Join(t.TempDir(), "cache.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	its := items("good", "bad")
	if _, _, err := (&RemoteRun{Judge: remote(srv.URL, &sleeps{}), Template: Dolly, Cache: cache}).Run(context.Background(), its); err != nil {
		t.Fatal(err)
	}
	again := Template{Name: "./templates/dolly.txt", Text: Dolly.Text}
	_, st, err := (&RemoteRun{Judge: remote(srv.URL, &sleeps{}), Template: again, Cache: cache}).Run(context.Background(), its)
	if err != nil {
		t.Fatal(err)
	}
	if st.Calls != 0 || st.Cached != 4 {
		t.Fatalf("same template text under another name: %+v, want every verdict from the cache", st)
	}
}

// Questions cut short by an interrupt are not reported as failed verdicts: they were not
// answered, and the rerun asks them.
func TestInterruptIsNotFailure(t *testing.T) {
	f := newFake()
	srv := httptest.NewServer(f)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	f.onCall = func(n int64) {
		if n == 5 {
			cancel()
			time.Sleep(50 * time.Millisecond) // the client gives up on this request
		}
	}
	var kinds []string
	for i := 0; i < 20; i++ {
		kinds = append(kinds, fmt.Sprint("good", i))
	}
	_, st, err := (&RemoteRun{Judge: remote(srv.URL, &sleeps{}), Template: Dolly, Concurrency: 2}).Run(ctx, items(kinds...))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v", err)
	}
	if st.Failed != 0 {
		t.Fatalf("interrupted run reports %d failed verdicts: %+v", st.Failed, st)
	}
}

// RemoteRun.Query decides what the template shows as {query}, and the cache is keyed by it.
func TestRemoteQuery(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req chatRequest
		json.NewDecoder(r.Body).Decode(&req)
		mu.Lock()
		seen = append(seen, between(req.Messages[0].Content, "Query: ", "\n Response A:"))
		mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{"choices": []any{map[string]any{"message": map[string]any{"content": "A"}}}})
	}))
	defer srv.Close()
	its := items("x")
	its[0].Gen.Prompt = "### Instruction:\nWho wrote Hamlet?\n### Response:\n"
	q := func(p string) string {
		return strings.TrimSuffix(strings.TrimPrefix(p, "### Instruction:\n"), "\n### Response:\n")
	}
	if _, _, err := (&RemoteRun{Judge: remote(srv.URL, &sleeps{}), Template: Dolly, Query: q}).Run(context.Background(), its); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 2 || seen[0] != "Who wrote Hamlet?" || seen[1] != "Who wrote Hamlet?" {
		t.Fatalf("queries shown: %q", seen)
	}
}

// A --base-url given with the endpoint path already (…/v1/chat/completions, as copied from an
// API example) reaches the endpoint instead of …/chat/completions/chat/completions.
func TestBaseURLWithEndpointPath(t *testing.T) {
	f := newFake()
	srv := httptest.NewServer(f)
	defer srv.Close()
	for _, base := range []string{srv.URL + "/v1", srv.URL + "/v1/", srv.URL + "/v1/chat/completions", srv.URL + "/v1/chat/completions/"} {
		r := remote(srv.URL, &sleeps{})
		r.BaseURL = base
		if _, err := r.Ask(context.Background(), "Response A: good\n Response B: bad\n"); err != nil {
			t.Errorf("base %s: %v", base, err)
		}
	}
}

// A reference with text but no ids (joined by --references from examples of another
// tokenizer) must not score as an empty response that every generation beats: it is encoded
// with the judge's tokenizer, or, when the judge model ships none, it is an error.
func TestLikelihoodJudgeReferenceWithoutIDs(t *testing.T) {
	tok, err := tokenizer.Load("../../testdata/tokenizer/sp/llama.model")
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.New(model.Config{Arch: "gpt2", VocabSize: tok.VocabSize(), MaxSeqLen: 64, NLayer: 1, NHead: 2, NKVHead: 2,
		DModel: 8, DFF: 32, NormEps: 1e-5, TieEmbeddings: true, BOS: int(tok.BOS()), EOS: int(tok.EOS())})
	if err != nil {
		t.Fatal(err)
	}
	m.InitGPT2Style(3)
	it := Item{Gen: shard.Generation{ID: "0", PromptIDs: tok.Encode("Who wrote Hamlet?"), IDs: tok.Encode("me"), Text: "me",
		Reference: "Shakespeare wrote it.", Tokenizer: tok.Fingerprint(), Model: "fp", Decoding: "greedy"}, Where: "g row 0"}
	l := &Likelihood{Scorer: metrics.NewScorer(m), Texts: &metrics.Texts{}, Name: "likelihood:fp"}
	if _, _, err := l.Run(context.Background(), []Item{it}); err == nil || !strings.Contains(err.Error(), "g row 0") || !strings.Contains(err.Error(), "reference") {
		t.Fatalf("reference without ids and no tokenizer: %v", err)
	}
	l.Texts = &metrics.Texts{Tok: tok, FP: tok.Fingerprint()}
	js, _, err := l.Run(context.Background(), []Item{it})
	if err != nil {
		t.Fatal(err)
	}
	ref := append(tok.EncodeOrdinary("Shakespeare wrote it."), tok.EOS())
	lp, _ := metrics.NewScorer(m).Score([][]int32{it.Gen.PromptIDs}, [][]int32{ref})
	if !strings.Contains(js[0].RawFirst, "B="+strconv.FormatFloat(lp[0].Mean(), 'g', 9, 64)) {
		t.Fatalf("reference not scored from its text: %q (want mean %g)", js[0].RawFirst, lp[0].Mean())
	}
}

// Stats.Unparsed counts every unparsed verdict, also those answered from the cache or shared
// with an identical question, so the report matches the invalid judgments written.
func TestUnparsedCountsCachedAndShared(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"choices": []any{map[string]any{"message": map[string]any{"content": "Both are fine."}}}})
	}))
	defer srv.Close()
	cache, err := OpenCache(filepath.Join(t.TempDir(), "c.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	its := items("same", "same", "same") // identical texts: one question per order, shared
	for i := range its {
		its[i].Gen.Prompt = "one prompt"
		its[i].Gen.Reference = "one reference"
	}
	for run := 0; run < 2; run++ { // the second run answers everything from the cache
		js, st, err := (&RemoteRun{Judge: remote(srv.URL, &sleeps{}), Template: Dolly, Cache: cache, Concurrency: 3}).Run(context.Background(), its)
		if err != nil {
			t.Fatal(err)
		}
		if st.Unparsed != 6 || js[2].Outcome != "invalid" {
			t.Fatalf("run %d: %+v, want 6 unparsed verdicts", run, st)
		}
	}
}
