package judge

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// CacheKey is the hex SHA-256 of the judge model, the template's hash (Template.Hash: its
// text, not its name), the prompt and the two responses, each followed by a NUL byte, in that
// order.
func CacheKey(judgeModel, templateHash, query, a, b string) string {
	h := sha256.New()
	for _, s := range []string{judgeModel, templateHash, query, a, b} {
		io.WriteString(h, s)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// CacheEntry is one cached answer: a line of the cache file.
type CacheEntry struct {
	Key     string `json:"key"`
	Verdict string `json:"verdict"` // A, B or unparsed (errors are never cached)
	Raw     string `json:"raw"`
	Judge   string `json:"judge"`
	Time    int64  `json:"time"` // unix seconds
}

// Cache is a persistent, append-only store of judge answers: a JSON Lines file of
// CacheEntry, one line appended and fsynced per answer, so a killed run loses at most the
// answer being written and a rerun asks only what is missing. On open, a last line cut short
// by a kill is cut off; other unreadable lines are skipped (and counted in Skipped). Later
// lines win over earlier ones with the same key. Unparsed answers are cached too (the judge
// runs at temperature 0, so asking again would mostly repeat them); delete the file, or run
// without a cache, to ask again. Errors are never cached. Several processes may append to one file
// (each line is a single write to a file opened O_APPEND). Safe for concurrent use.
type Cache struct {
	mu      sync.Mutex
	f       *os.File
	m       map[string]CacheEntry
	Path    string
	Skipped int // unreadable lines found on open
}

// OpenCache opens (creating it and its directory if needed) the cache file at path.
func OpenCache(path string) (*Cache, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("judge cache: %w", err)
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("judge cache: %w", err)
	}
	c := &Cache{f: f, m: map[string]CacheEntry{}, Path: path}
	data, err := io.ReadAll(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("judge cache %s: %w", path, err)
	}
	if n := len(data); n > 0 && data[n-1] != '\n' {
		// A kill in the middle of a write left a partial last line: cut it off so the next
		// append starts on a fresh line.
		cut := bytes.LastIndexByte(data, '\n') + 1
		if err := f.Truncate(int64(cut)); err != nil {
			f.Close()
			return nil, fmt.Errorf("judge cache %s: cutting a partial last line: %w", path, err)
		}
		data = data[:cut]
		c.Skipped++
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var e CacheEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Key == "" || (e.Verdict != VerdictA && e.Verdict != VerdictB && e.Verdict != VerdictUnparsed) {
			c.Skipped++
			continue
		}
		c.m[e.Key] = e
	}
	if err := sc.Err(); err != nil {
		f.Close()
		return nil, fmt.Errorf("judge cache %s: %w", path, err)
	}
	f.Close()
	// Reopen for appending only, so every write lands at the end even with other writers.
	if c.f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
		return nil, fmt.Errorf("judge cache: %w", err)
	}
	return c, nil
}

// Len returns the number of cached answers.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// Get returns the cached answer of key.
func (c *Cache) Get(key string) (CacheEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	return e, ok
}

// Put records an answer and appends it to the file, synced to disk before Put returns.
func (c *Cache) Put(e CacheEntry) error {
	if e.Time == 0 {
		e.Time = time.Now().Unix()
	}
	line, err := json.Marshal(e)
	if err != nil {
		return err
	}
	line = append(line, '\n')
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[e.Key] = e
	if _, err := c.f.Write(line); err != nil {
		return fmt.Errorf("judge cache %s: %w", c.Path, err)
	}
	if err := c.f.Sync(); err != nil {
		return fmt.Errorf("judge cache %s: %w", c.Path, err)
	}
	return nil
}

// Close closes the file.
func (c *Cache) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.f.Close()
}
