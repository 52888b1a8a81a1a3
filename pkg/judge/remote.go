package judge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Remote asks an OpenAI-compatible chat-completions endpoint (POST {BaseURL}/chat/completions
// with one user message, temperature 0 and MaxTokens) and returns the answer text.
//
// Retries: a request answered 408, 429 or 5xx, timed out, or refused at the connection is retried
// up to Retries times, waiting an exponential backoff with jitter (attempt k waits a uniform
// time in [d/2, d], d = min(BaseDelay·2^k, MaxDelay)), or the server's Retry-After (seconds or
// an HTTP date, capped at MaxRetryAfter) when that is longer. Other 4xx answers are not
// retried; 401, 403 and 404 (bad key, no access, wrong URL or model) stop the whole run, since
// every request would fail the same way. MaxConnFailures consecutive connection failures or
// timeouts without any answer in between (over all concurrent requests) open the circuit:
// every request then fails at once with ErrUnreachable instead of retrying.
//
// The API key goes only into the Authorization header; it is never logged or put into errors.
type Remote struct {
	BaseURL, Model, APIKey string
	MaxTokens              int
	Timeout                time.Duration // per request (default 60 s)
	Retries                int           // retries after the first attempt (default 5)
	BaseDelay, MaxDelay    time.Duration // backoff (defaults 1 s and 60 s)
	MaxRetryAfter          time.Duration // cap on a server's Retry-After (default 120 s)
	MaxConnFailures        int           // consecutive connection failures that open the circuit (default 8)
	HTTP                   *http.Client
	// Sleep waits d or until ctx is done (tests replace it); nil means a real timer.
	Sleep func(ctx context.Context, d time.Duration) error

	initOnce       sync.Once
	calls, retries atomic.Int64
	mu             sync.Mutex
	consecutive    int
	open           error
	rngMu          sync.Mutex
	rng            *rand.Rand
}

// ErrUnreachable is wrapped by the error returned once the circuit is open.
var ErrUnreachable = errors.New("judge endpoint unreachable")

// FatalError is an answer that will not get better by asking again (401, 403, 404): the run
// stops.
type FatalError struct{ Err error }

func (e *FatalError) Error() string { return e.Err.Error() }
func (e *FatalError) Unwrap() error { return e.Err }

// IsFatal reports whether err should stop the whole run (circuit open, FatalError, or the
// context cancelled).
func IsFatal(err error) bool {
	var fe *FatalError
	return errors.As(err, &fe) || errors.Is(err, ErrUnreachable) || errors.Is(err, context.Canceled)
}

// Calls is the number of HTTP requests sent so far; Retried the number of them that were
// retries.
func (r *Remote) Calls() int64   { return r.calls.Load() }
func (r *Remote) Retried() int64 { return r.retries.Load() }

// endpoint is BaseURL + "/chat/completions", or BaseURL itself when it already ends with
// that path (a full endpoint URL copied from an API example).
func (r *Remote) endpoint() string {
	base := strings.TrimRight(r.BaseURL, "/")
	if strings.HasSuffix(base, "/chat/completions") {
		return base
	}
	return base + "/chat/completions"
}

func (r *Remote) defaults() {
	if r.Timeout <= 0 {
		r.Timeout = 60 * time.Second
	}
	if r.BaseDelay <= 0 {
		r.BaseDelay = time.Second
	}
	if r.MaxDelay <= 0 {
		r.MaxDelay = 60 * time.Second
	}
	if r.MaxRetryAfter <= 0 {
		r.MaxRetryAfter = 120 * time.Second
	}
	if r.MaxConnFailures <= 0 {
		r.MaxConnFailures = 8
	}
	if r.MaxTokens <= 0 {
		r.MaxTokens = 8
	}
	if r.HTTP == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 64 // keep one connection per concurrent request alive
		r.HTTP = &http.Client{Transport: tr}
	}
	if r.Sleep == nil {
		r.Sleep = func(ctx context.Context, d time.Duration) error {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-t.C:
				return nil
			}
		}
	}
}

// Init fills the zero fields with their defaults. Ask calls it once by itself.
func (r *Remote) Init() {
	r.initOnce.Do(func() {
		r.defaults()
		if r.rng == nil {
			r.rng = rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0x9e3779b97f4a7c15))
		}
	})
}

type chatRequest struct {
	Model       string        `json:"model"`
	Messages    []chatMessage `json:"messages"`
	Temperature float64       `json:"temperature"`
	MaxTokens   int           `json:"max_tokens"`
}

type chatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type chatResponse struct {
	Choices []struct {
		Message struct {
			Content *string `json:"content"`
		} `json:"message"`
	} `json:"choices"`
}

// attemptResult classifies one HTTP attempt.
type attemptResult int

const (
	attemptOK attemptResult = iota
	attemptRetry
	attemptConn  // connection failure or timeout: retry, and count toward the circuit breaker
	attemptFail  // this request failed for good
	attemptFatal // the whole run should stop
)

// Ask sends prompt and returns the answer text, retrying as described on Remote.
func (r *Remote) Ask(ctx context.Context, prompt string) (string, error) {
	r.Init()
	body, err := json.Marshal(chatRequest{Model: r.Model, Messages: []chatMessage{{Role: "user", Content: prompt}},
		Temperature: 0, MaxTokens: r.MaxTokens})
	if err != nil {
		return "", err
	}
	for attempt := 0; ; attempt++ {
		if err := r.circuit(); err != nil {
			return "", err
		}
		if err := ctx.Err(); err != nil {
			return "", err
		}
		if attempt > 0 {
			r.retries.Add(1)
		}
		r.calls.Add(1)
		text, kind, retryAfter, err := r.once(ctx, body)
		switch kind {
		case attemptOK:
			r.answered()
			return text, nil
		case attemptFail:
			r.answered()
			return "", err
		case attemptFatal:
			return "", &FatalError{err}
		case attemptRetry:
			r.answered()
		case attemptConn:
			if ctx.Err() != nil {
				return "", ctx.Err()
			}
			if cerr := r.connFailed(err); cerr != nil {
				return "", cerr
			}
		}
		if attempt >= r.Retries {
			return "", fmt.Errorf("%w (gave up after %d attempts)", err, attempt+1)
		}
		if err := r.Sleep(ctx, r.delay(attempt, retryAfter)); err != nil {
			return "", err
		}
	}
}

// delay is the wait before retry attempt+1: jittered exponential backoff, or Retry-After when
// longer.
func (r *Remote) delay(attempt int, retryAfter time.Duration) time.Duration {
	d := r.BaseDelay << min(attempt, 30)
	if d > r.MaxDelay || d <= 0 {
		d = r.MaxDelay
	}
	r.rngMu.Lock()
	j := d/2 + time.Duration(r.rng.Int64N(int64(d/2)+1))
	r.rngMu.Unlock()
	if retryAfter > j {
		j = min(retryAfter, r.MaxRetryAfter)
	}
	return j
}

func (r *Remote) circuit() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.open
}

func (r *Remote) answered() {
	r.mu.Lock()
	r.consecutive = 0
	r.mu.Unlock()
}

func (r *Remote) connFailed(err error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.consecutive++
	if r.open == nil && r.consecutive >= r.MaxConnFailures {
		r.open = fmt.Errorf("%w: %s failed %d times in a row without an answer (last: %s); is the server running and --base-url right?",
			ErrUnreachable, r.endpoint(), r.consecutive, strings.TrimPrefix(err.Error(), r.endpoint()+": "))
	}
	return r.open
}

func (r *Remote) once(ctx context.Context, body []byte) (string, attemptResult, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.endpoint(), bytes.NewReader(body))
	if err != nil {
		return "", attemptFatal, 0, fmt.Errorf("judge endpoint %q: %w", r.BaseURL, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if r.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+r.APIKey)
	}
	resp, err := r.HTTP.Do(req)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return "", attemptConn, 0, fmt.Errorf("%s: no answer within %v", r.endpoint(), r.Timeout)
		}
		return "", attemptConn, 0, fmt.Errorf("%s: %w", r.endpoint(), stripURL(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		if ctx.Err() != nil {
			return "", attemptConn, 0, fmt.Errorf("%s: no complete answer within %v", r.endpoint(), r.Timeout)
		}
		return "", attemptRetry, 0, fmt.Errorf("%s: reading the answer: %w", r.endpoint(), err)
	}
	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode >= 500:
		return "", attemptRetry, retryAfter(resp.Header.Get("Retry-After")),
			fmt.Errorf("%s: HTTP %d: %s", r.endpoint(), resp.StatusCode, snippet(data))
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusNotFound:
		return "", attemptFatal, 0, fmt.Errorf("%s: HTTP %d: %s", r.endpoint(), resp.StatusCode, snippet(data))
	default:
		return "", attemptFail, 0, fmt.Errorf("%s: HTTP %d: %s", r.endpoint(), resp.StatusCode, snippet(data))
	}
	var cr chatResponse
	if err := json.Unmarshal(data, &cr); err != nil || len(cr.Choices) == 0 {
		return "", attemptFail, 0, fmt.Errorf("%s: not a chat-completions answer: %s", r.endpoint(), snippet(data))
	}
	if c := cr.Choices[0].Message.Content; c != nil {
		return *c, attemptOK, 0, nil
	}
	return "", attemptOK, 0, nil
}

// stripURL drops the *url.Error wrapper's "Post URL:" prefix (the URL is said once already).
func stripURL(err error) error {
	if ue, ok := err.(interface{ Unwrap() error }); ok && strings.HasPrefix(err.Error(), "Post ") {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// retryAfter parses a Retry-After header: delay seconds or an HTTP date (0 if absent or bad).
func retryAfter(h string) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(h, 64); err == nil && s >= 0 {
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(h); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}
