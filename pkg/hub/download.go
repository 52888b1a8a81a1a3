package hub

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cpo-toolchain/cpo/pkg/safetensors"
)

const (
	singleWeights = safetensors.SingleFileName
	indexWeights  = safetensors.IndexFileName
)

// TokenizerFiles are fetched beside the weights when the repository has them.
var TokenizerFiles = []string{
	"tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json", "merges.txt",
	"special_tokens_map.json", "added_tokens.json", "generation_config.json",
}

// Client resolves and downloads models. The zero value is not useful: use FromEnv, or set
// every field.
type Client struct {
	Endpoint string       // e.g. https://huggingface.co, no trailing slash
	Token    string       // bearer token; empty for anonymous access
	CacheDir string       // the hub cache directory (see DefaultCacheDir)
	Offline  bool         // never touch the network
	HTTP     *http.Client // nil: a client with no overall timeout
	// Progress receives download progress lines (nil: silent). The token never appears there.
	Progress io.Writer
	// ProgressInterval is the time between progress lines of one file (0: 2 s).
	ProgressInterval time.Duration
	// Retries is how often an interrupted transfer is resumed within one call (0: 3).
	Retries int
}

// FromEnv returns a Client configured from HF_ENDPOINT, HF_TOKEN (or $HF_HOME/token),
// HF_HUB_CACHE / HF_HOME and HF_HUB_OFFLINE, reporting progress on stderr.
func FromEnv() *Client {
	c := &Client{
		Endpoint: strings.TrimRight(os.Getenv(EnvEndpoint), "/"),
		Token:    strings.TrimSpace(os.Getenv(EnvToken)),
		CacheDir: DefaultCacheDir(),
		Offline:  envTrue(EnvOffline) || envTrue("TRANSFORMERS_OFFLINE"),
		Progress: os.Stderr,
	}
	if c.Endpoint == "" {
		c.Endpoint = DefaultEndpoint
	}
	if c.Token == "" {
		if b, err := os.ReadFile(filepath.Join(hfHome(), "token")); err == nil {
			c.Token = strings.TrimSpace(string(b))
		}
	}
	return c
}

// Resolve returns the checkpoint directory for a model argument using FromEnv: see
// Client.Resolve.
func Resolve(ctx context.Context, arg string) (string, error) { return FromEnv().Resolve(ctx, arg) }

// Resolve returns the checkpoint directory for a model argument: arg itself when it is a
// directory; else, for a hub id with optional @revision, the cached snapshot when complete;
// else (unless offline) the snapshot after downloading it. A complete cached snapshot is used
// without asking the hub whether the branch moved (runs stay reproducible and work offline);
// name a commit (@<sha>) or another revision to get a newer one.
func (c *Client) Resolve(ctx context.Context, arg string) (string, error) {
	if st, err := os.Stat(arg); err == nil {
		if st.IsDir() {
			return arg, nil
		}
		return "", fmt.Errorf("model %s: is a file; give the checkpoint directory", arg)
	}
	if looksLikePath(arg) {
		return "", fmt.Errorf("model %s: no such directory", arg)
	}
	repo, rev, err := ParseID(arg)
	if err != nil {
		return "", fmt.Errorf("model %s: not a directory, and %w", arg, err)
	}
	if dir, ok := CachedSnapshot(c.CacheDir, repo, rev); ok {
		return dir, nil
	}
	if c.Offline {
		return "", fmt.Errorf("model %s: not a directory and not in the hub cache %s, and %w", arg, c.CacheDir, errOffline)
	}
	dir, err := c.Download(ctx, repo, rev)
	if err != nil {
		// "runs/mle" reads as a hub id; when its first part is a local directory the user
		// most likely mistyped a path, so say that before the hub's answer.
		if parent, _, ok := strings.Cut(arg, "/"); ok {
			if st, serr := os.Stat(parent); serr == nil && st.IsDir() {
				return "", fmt.Errorf("model %s: no such directory (%s/ exists here), and as a hub id: %w", arg, parent, err)
			}
		}
	}
	return dir, err
}

func looksLikePath(s string) bool {
	return strings.HasPrefix(s, "/") || strings.HasPrefix(s, "./") || strings.HasPrefix(s, "../") ||
		strings.HasPrefix(s, "~") || s == "." || s == ".." || strings.HasSuffix(s, "/") ||
		strings.Count(s, "/") > 1 || strings.ContainsRune(s, os.PathSeparator) && os.PathSeparator != '/'
}

// HubError is an HTTP error answer of the hub, with a message for users.
type HubError struct {
	Status int
	Code   string // the X-Error-Code header, when present
	What   string // what was asked, e.g. "repository gpt2 revision main"
	Msg    string
}

func (e *HubError) Error() string { return e.Msg }

func (c *Client) hubError(resp *http.Response, what string) error {
	code := resp.Header.Get("X-Error-Code")
	e := &HubError{Status: resp.StatusCode, Code: code, What: what}
	var hint string
	switch {
	case code == "GatedRepo":
		hint = "the repository is gated: accept its terms on the hub and set HF_TOKEN"
	case code == "RepoNotFound" || code == "RepositoryNotFound":
		hint = "repository not found (or private: set HF_TOKEN)"
	case code == "RevisionNotFound":
		hint = "revision not found"
	case code == "EntryNotFound":
		hint = "file not found in the repository"
	case resp.StatusCode == http.StatusUnauthorized && c.Token == "":
		hint = "authentication required: set HF_TOKEN (the repository may be private, or may not exist)"
	case resp.StatusCode == http.StatusUnauthorized:
		hint = "the token in HF_TOKEN was refused (the repository may be private, or may not exist)"
	case resp.StatusCode == http.StatusForbidden:
		hint = "access forbidden: the token lacks permission for this repository"
	case resp.StatusCode == http.StatusNotFound:
		hint = "not found"
	case resp.StatusCode == http.StatusTooManyRequests:
		hint = "rate limited by the hub; retry later"
	default:
		hint = "unexpected answer"
	}
	e.Msg = fmt.Sprintf("hub %s: %s: HTTP %d: %s", c.Endpoint, what, resp.StatusCode, hint)
	return e
}

func (c *Client) httpClient() *http.Client {
	h := c.HTTP
	if h == nil {
		h = http.DefaultClient
	}
	// Redirects are followed by hand: the ETag headers of the first answer matter, and the
	// token must not travel to another host.
	cp := *h
	cp.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cp
}

func (c *Client) newRequest(ctx context.Context, method, u string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", "cpo-toolchain/hub")
	if c.Token != "" && sameHost(u, c.Endpoint) {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	return req, nil
}

func sameHost(a, b string) bool {
	ua, err1 := url.Parse(a)
	ub, err2 := url.Parse(b)
	return err1 == nil && err2 == nil && ua.Scheme == ub.Scheme && ua.Host == ub.Host
}

// do sends a request, following same-host redirects (a renamed repository) and, when
// followAll, redirects to other hosts too (a CDN).
func (c *Client) do(ctx context.Context, method, u string, hdr http.Header, followAll bool) (*http.Response, error) {
	hc := c.httpClient()
	for hops := 0; ; hops++ {
		req, err := c.newRequest(ctx, method, u)
		if err != nil {
			return nil, err
		}
		for k, v := range hdr {
			req.Header[k] = v
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode < 300 || resp.StatusCode >= 400 || resp.StatusCode == http.StatusNotModified {
			return resp, nil
		}
		loc, err := resp.Location()
		if err != nil || hops >= 10 {
			resp.Body.Close()
			return nil, fmt.Errorf("%s %s: bad redirect (HTTP %d)", method, redactURL(u), resp.StatusCode)
		}
		if !followAll && !sameHost(loc.String(), c.Endpoint) || !followAll && resp.Header.Get("X-Linked-Etag") != "" {
			return resp, nil // the caller reads the headers of this answer
		}
		resp.Body.Close()
		u = loc.String()
	}
}

// redactURL drops the query (signed CDN URLs carry credentials there).
func redactURL(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i] + "?…"
	}
	return u
}

// apiURL is the revision API of a repository: {endpoint}/api/models/{repo}/revision/{rev} or
// {endpoint}/api/datasets/{repo}/revision/{rev}.
func (c *Client) apiURL(kind Kind, repo, rev string) string {
	return fmt.Sprintf("%s/api/%s/%s/revision/%s", c.Endpoint, kind.plural(), repo, url.PathEscape(rev))
}

// fileURL is where a file of a repository is downloaded: {endpoint}/{repo}/resolve/... for a
// model, {endpoint}/datasets/{repo}/resolve/... for a dataset.
func (c *Client) fileURL(kind Kind, repo, commit, file string) string {
	prefix := ""
	if kind != Model {
		prefix = kind.plural() + "/"
	}
	return fmt.Sprintf("%s/%s%s/resolve/%s/%s", c.Endpoint, prefix, repo, url.PathEscape(commit), escapePath(file))
}

func escapePath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}

type repoInfo struct {
	SHA      string `json:"sha"`
	Siblings []struct {
		RFilename string `json:"rfilename"`
	} `json:"siblings"`
}

// Download fetches config.json, the tokenizer files and the safetensors weights of repo at
// rev into the cache and returns the snapshot directory. Files already in the cache are not
// fetched again; a partial file is resumed.
func (c *Client) Download(ctx context.Context, repo, rev string) (string, error) {
	if c.Offline {
		return "", fmt.Errorf("model %s: %w", repo, errOffline)
	}
	if _, _, err := ParseID(repo + "@" + rev); err != nil {
		return "", err
	}
	info, err := c.revisionInfo(ctx, Model, repo, rev)
	if err != nil {
		return "", err
	}
	have := map[string]bool{}
	for _, s := range info.Siblings {
		have[s.RFilename] = true
	}
	if !have["config.json"] {
		return "", fmt.Errorf("hub: %s@%s has no config.json", repo, rev)
	}
	files := []string{"config.json"}
	for _, f := range TokenizerFiles {
		if have[f] {
			files = append(files, f)
		}
	}
	root := filepath.Join(c.CacheDir, RepoFolderName(repo))
	snap := filepath.Join(root, "snapshots", info.SHA)
	found := false
	for _, l := range weightLayouts {
		if have[l[0]] {
			files = append(files, l[0])
			found = true
			break
		}
		if have[l[1]] {
			if err := c.fetch(ctx, Model, repo, info.SHA, l[1]); err != nil {
				return "", err
			}
			shards, err := indexShards(filepath.Join(snap, filepath.FromSlash(l[1])))
			if err != nil {
				return "", err
			}
			files = append(files, shards...)
			found = true
			break
		}
	}
	if !found {
		return "", fmt.Errorf("hub: %s@%s has no weights this project reads (%s, %s, %s or %s)", repo, rev, weightLayouts[0][0], weightLayouts[0][1], weightLayouts[1][0], weightLayouts[1][1])
	}
	for _, f := range files {
		if err := c.fetch(ctx, Model, repo, info.SHA, f); err != nil {
			return "", err
		}
	}
	if err := writeRef(root, rev, info.SHA); err != nil {
		return "", err
	}
	if err := Complete(snap); err != nil {
		return "", err
	}
	return snap, nil
}

// writeRef records under a repository's cache folder root that rev points at commit (nothing
// to record when rev is the commit).
func writeRef(root, rev, commit string) error {
	if rev == commit {
		return nil
	}
	ref := filepath.Join(root, "refs", filepath.FromSlash(rev))
	if err := os.MkdirAll(filepath.Dir(ref), 0o755); err != nil {
		return err
	}
	return safetensors.AtomicWrite(ref, func(w io.Writer) error {
		_, err := io.WriteString(w, commit)
		return err
	})
}

func (c *Client) revisionInfo(ctx context.Context, kind Kind, repo, rev string) (*repoInfo, error) {
	what := fmt.Sprintf("repository %s revision %s", kind.display(repo), rev)
	resp, err := c.do(ctx, http.MethodGet, c.apiURL(kind, repo, rev), nil, false)
	if err != nil {
		return nil, fmt.Errorf("hub: %s: %w", what, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, c.hubError(resp, what)
	}
	var info repoInfo
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&info); err != nil {
		return nil, fmt.Errorf("hub: %s: bad answer: %w", what, err)
	}
	if !commitRE.MatchString(info.SHA) {
		return nil, fmt.Errorf("hub: %s: answer has no commit hash", what)
	}
	for _, s := range info.Siblings {
		if checkRepoFile(s.RFilename) != nil {
			return nil, fmt.Errorf("hub: %s: invalid file name %q in the file list", what, s.RFilename)
		}
	}
	return &info, nil
}

func indexShards(path string) ([]string, error) {
	ix, err := safetensors.ReadIndex(path)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	for _, s := range ix.WeightMap {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out, nil
}

// fileMeta is what a HEAD request on a resolve URL tells.
type fileMeta struct {
	etag     string
	size     int64 // -1 if unknown
	location string
}

func normalizeETag(s string) string {
	s = strings.TrimPrefix(strings.TrimSpace(s), "W/")
	return strings.Trim(s, `"`)
}

func (c *Client) head(ctx context.Context, kind Kind, repo, commit, file string) (*fileMeta, error) {
	u := c.fileURL(kind, repo, commit, file)
	what := fmt.Sprintf("%s@%s file %s", kind.display(repo), commit[:min(len(commit), 12)], file)
	resp, err := c.do(ctx, http.MethodHead, u, http.Header{"Accept-Encoding": {"identity"}}, false)
	if err != nil {
		return nil, fmt.Errorf("hub: %s: %w", what, err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 400 {
		return nil, c.hubError(resp, what)
	}
	m := &fileMeta{size: -1, location: u}
	m.etag = normalizeETag(resp.Header.Get("X-Linked-Etag"))
	if m.etag == "" {
		m.etag = normalizeETag(resp.Header.Get("ETag"))
	}
	if m.etag == "" {
		return nil, fmt.Errorf("hub: %s: the answer has no ETag, cannot cache the file", what)
	}
	if strings.ContainsAny(m.etag, `/\`) || m.etag == "." || m.etag == ".." {
		return nil, fmt.Errorf("hub: %s: invalid ETag %q", what, m.etag)
	}
	sz := resp.Header.Get("X-Linked-Size")
	if sz == "" {
		sz = resp.Header.Get("Content-Length")
	}
	if n, err := strconv.ParseInt(sz, 10, 64); err == nil && n >= 0 {
		m.size = n
	}
	if resp.StatusCode >= 300 {
		if loc, err := resp.Location(); err == nil {
			m.location = loc.String()
		}
	}
	return m, nil
}

// fetch makes snapshots/<commit>/<file> of a repository point at a verified blob,
// downloading it if needed.
func (c *Client) fetch(ctx context.Context, kind Kind, repo, commit, file string) error {
	name := kind.display(repo)
	if err := checkRepoFile(file); err != nil {
		return fmt.Errorf("hub: %s: %w", name, err)
	}
	folder := FolderName(kind, repo)
	root := filepath.Join(c.CacheDir, folder)
	pointer := filepath.Join(root, "snapshots", commit, filepath.FromSlash(file))
	if isFile(pointer) {
		return nil
	}
	m, err := c.head(ctx, kind, repo, commit, file)
	if err != nil {
		return err
	}
	blob := filepath.Join(root, "blobs", m.etag)
	lock := filepath.Join(c.CacheDir, ".locks", folder, m.etag+".lock")
	unlock, err := lockPath(ctx, lock, func() {
		c.progressf("hub: %s %s: waiting for another download of the same file\n", name, file)
	})
	if err != nil {
		return fmt.Errorf("hub: locking %s: %w", lock, err)
	}
	defer unlock()
	if isFile(pointer) { // another process finished it meanwhile
		return nil
	}
	if st, err := os.Stat(blob); err != nil || (m.size >= 0 && st.Size() != m.size) {
		if err := os.MkdirAll(filepath.Dir(blob), 0o755); err != nil {
			return err
		}
		if err := c.downloadBlob(ctx, name, file, m, blob); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Dir(pointer), 0o755); err != nil {
		return err
	}
	rel, err := filepath.Rel(filepath.Dir(pointer), blob)
	if err != nil {
		return err
	}
	os.Remove(pointer) // a dangling link from an earlier attempt
	if err := os.Symlink(rel, pointer); err != nil {
		return fmt.Errorf("hub: linking %s: %w", pointer, err)
	}
	return nil
}

// errTransfer marks an interrupted body transfer, which is resumed.
type errTransfer struct{ err error }

func (e errTransfer) Error() string { return e.err.Error() }
func (e errTransfer) Unwrap() error { return e.err }

// downloadBlob fetches the file into blob through blob.incomplete; repo names the repository
// in messages only.
func (c *Client) downloadBlob(ctx context.Context, repo, file string, m *fileMeta, blob string) error {
	part := blob + ".incomplete"
	retries := c.Retries
	if retries <= 0 {
		retries = 3
	}
	var err error
	for attempt := 0; attempt <= retries; attempt++ {
		err = c.transfer(ctx, repo, file, m, part)
		var te errTransfer
		if err == nil || !errors.As(err, &te) || ctx.Err() != nil {
			break
		}
		c.progressf("hub: %s %s: transfer interrupted (%v), resuming\n", repo, file, te.err)
	}
	if err != nil {
		return err
	}
	if err := verify(part, m, repo, file); err != nil {
		os.Remove(part)
		return err
	}
	return os.Rename(part, blob)
}

// transfer appends the missing bytes of the file to part, with a Range request when part
// already holds some.
func (c *Client) transfer(ctx context.Context, repo, file string, m *fileMeta, part string) error {
	f, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	have, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	if m.size >= 0 && have > m.size { // garbage: start over
		if err := f.Truncate(0); err != nil {
			return err
		}
		have, _ = f.Seek(0, io.SeekStart)
	}
	if m.size >= 0 && have == m.size {
		return nil
	}
	hdr := http.Header{"Accept-Encoding": {"identity"}}
	if have > 0 {
		hdr.Set("Range", fmt.Sprintf("bytes=%d-", have))
	}
	what := fmt.Sprintf("%s file %s", repo, file)
	resp, err := c.do(ctx, http.MethodGet, m.location, hdr, true)
	if err != nil {
		return errTransfer{err}
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusPartialContent && have > 0:
		var start int64 = -1
		fmt.Sscanf(resp.Header.Get("Content-Range"), "bytes %d-", &start)
		if start != have {
			return fmt.Errorf("hub: %s: server resumed at byte %d, expected %d", what, start, have)
		}
	case resp.StatusCode == http.StatusOK:
		if have > 0 { // the server ignored Range: start over
			if err := f.Truncate(0); err != nil {
				return err
			}
			have, _ = f.Seek(0, io.SeekStart)
		}
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && m.size < 0:
		return nil // presumably complete; verify decides
	default:
		return c.hubError(resp, what)
	}
	pr := &progress{c: c, name: repo + " " + file, total: m.size, n: have, start: time.Now(), resumed: have}
	pr.report(false)
	_, err = io.Copy(f, io.TeeReader(resp.Body, pr))
	if err == nil {
		pr.report(true)
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return errTransfer{err}
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if m.size >= 0 && pr.n != m.size {
		return errTransfer{fmt.Errorf("got %d of %d bytes", pr.n, m.size)}
	}
	return nil
}

// verify checks the size and the checksum named by the ETag: sha256 of the content for LFS
// files (64 hex digits), the git blob sha1 for small files (40 hex digits).
func verify(part string, m *fileMeta, repo, file string) error {
	f, err := os.Open(part)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if m.size >= 0 && st.Size() != m.size {
		return fmt.Errorf("hub: %s file %s: size %d, expected %d", repo, file, st.Size(), m.size)
	}
	var h hash.Hash
	switch {
	case sha256RE.MatchString(m.etag):
		h = sha256.New()
	case commitRE.MatchString(m.etag):
		h = sha1.New()
		fmt.Fprintf(h, "blob %d\x00", st.Size())
	default:
		return nil // an ETag that is not a content hash: nothing to check against
	}
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != m.etag {
		return fmt.Errorf("hub: %s file %s: checksum mismatch: expected %s, got %s (partial download removed)", repo, file, m.etag, got)
	}
	return nil
}

func (c *Client) progressf(format string, a ...any) {
	if c.Progress != nil {
		fmt.Fprintf(c.Progress, format, a...)
	}
}

// progress counts transferred bytes and prints a line now and then.
type progress struct {
	c           *Client
	name        string
	total, n    int64
	resumed     int64
	start, last time.Time
}

func (p *progress) Write(b []byte) (int, error) {
	p.n += int64(len(b))
	iv := p.c.ProgressInterval
	if iv <= 0 {
		iv = 2 * time.Second
	}
	if time.Since(p.last) >= iv {
		p.report(false)
	}
	return len(b), nil
}

func (p *progress) report(final bool) {
	p.last = time.Now()
	mib := func(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
	msg := "hub: downloading " + p.name + ": " + mib(p.n)
	if p.total >= 0 {
		msg += " / " + mib(p.total)
	}
	if p.resumed > 0 {
		msg += " (resumed at " + mib(p.resumed) + ")"
	}
	if el := time.Since(p.start).Seconds(); el > 0 && p.n > p.resumed {
		msg += fmt.Sprintf(", %.1f MiB/s", float64(p.n-p.resumed)/(1<<20)/el)
	}
	if final {
		msg += ", done"
	}
	p.c.progressf("%s\n", msg)
}
