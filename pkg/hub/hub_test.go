package hub

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var timeZero time.Time

const secret = "hf_s3cr3t_t0ken"

// fakeHub imitates the parts of the hub API that downloads use: the revision endpoint, HEAD
// and GET on resolve URLs (small files answered directly with a git-sha1 ETag, LFS files
// redirected to a separate CDN server with X-Linked-Etag/X-Linked-Size), Range requests,
// private repositories, and faults: a transfer cut half-way, a corrupted body.
type fakeHub struct {
	mu      sync.Mutex
	repos   map[string]*fakeRepo
	hub     *httptest.Server
	cdn     *httptest.Server
	blobs   map[string][]byte // sha256 → content served by the CDN
	log     []string          // "METHOD path range auth"
	cutOnce map[string]bool   // sha256 → cut the next full transfer half-way
	corrupt map[string]bool   // sha256 → serve flipped bytes
}

type fakeRepo struct {
	private bool
	commit  string
	refs    map[string]string
	files   map[string][]byte
}

func isLFS(name string) bool { return strings.HasSuffix(name, ".safetensors") }

func newFakeHub(t *testing.T) *fakeHub {
	h := &fakeHub{repos: map[string]*fakeRepo{}, blobs: map[string][]byte{}, cutOnce: map[string]bool{}, corrupt: map[string]bool{}}
	h.cdn = httptest.NewServer(http.HandlerFunc(h.serveCDN))
	h.hub = httptest.NewServer(http.HandlerFunc(h.serveHub))
	t.Cleanup(func() { h.hub.Close(); h.cdn.Close() })
	return h
}

func (h *fakeHub) addRepo(name string, private bool, files map[string][]byte) *fakeRepo {
	sum := sha1.Sum([]byte(name))
	r := &fakeRepo{private: private, commit: hex.EncodeToString(sum[:]), files: files}
	r.refs = map[string]string{"main": r.commit}
	for n, b := range files {
		if isLFS(n) {
			s := sha256.Sum256(b)
			h.blobs[hex.EncodeToString(s[:])] = b
		}
	}
	h.repos[name] = r
	return r
}

func (h *fakeHub) record(r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.log = append(h.log, fmt.Sprintf("%s %s range=%q auth=%q", r.Method, r.URL.Path, r.Header.Get("Range"), r.Header.Get("Authorization")))
}

func (h *fakeHub) requests() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.log...)
}

// lookup finds the repository of a path "<repo>/<rest>", repo being one or two segments.
func (h *fakeHub) lookup(p string) (string, *fakeRepo, string) {
	parts := strings.SplitN(p, "/", 3)
	if len(parts) >= 3 {
		if r, ok := h.repos[parts[0]+"/"+parts[1]]; ok {
			return parts[0] + "/" + parts[1], r, parts[2]
		}
	}
	if len(parts) >= 2 {
		if r, ok := h.repos[parts[0]]; ok {
			return parts[0], r, strings.Join(parts[1:], "/")
		}
	}
	return "", nil, ""
}

func (h *fakeHub) serveHub(w http.ResponseWriter, r *http.Request) {
	h.record(r)
	authed := r.Header.Get("Authorization") == "Bearer "+secret
	p := strings.TrimPrefix(r.URL.Path, "/")
	api := strings.HasPrefix(p, "api/models/")
	p = strings.TrimPrefix(p, "api/models/")
	_, repo, rest := h.lookup(p)
	if repo == nil || repo.private && !authed {
		if authed {
			w.Header().Set("X-Error-Code", "RepoNotFound")
			w.WriteHeader(http.StatusNotFound)
		} else {
			w.WriteHeader(http.StatusUnauthorized)
		}
		return
	}
	var rev, file string
	if api {
		rev = strings.TrimPrefix(rest, "revision/")
	} else {
		seg := strings.SplitN(strings.TrimPrefix(rest, "resolve/"), "/", 2)
		if len(seg) != 2 {
			http.NotFound(w, r)
			return
		}
		rev, file = seg[0], seg[1]
	}
	commit := repo.refs[rev]
	if rev == repo.commit {
		commit = rev
	}
	if commit == "" {
		w.Header().Set("X-Error-Code", "RevisionNotFound")
		w.WriteHeader(http.StatusNotFound)
		return
	}
	if api {
		var sib []map[string]string
		for n := range repo.files {
			sib = append(sib, map[string]string{"rfilename": n})
		}
		json.NewEncoder(w).Encode(map[string]any{"sha": commit, "siblings": sib})
		return
	}
	body, ok := repo.files[file]
	if !ok {
		w.Header().Set("X-Error-Code", "EntryNotFound")
		w.WriteHeader(http.StatusNotFound)
		return
	}
	w.Header().Set("X-Repo-Commit", commit)
	if isLFS(file) {
		s := sha256.Sum256(body)
		sum := hex.EncodeToString(s[:])
		w.Header().Set("X-Linked-Etag", `"`+sum+`"`)
		w.Header().Set("X-Linked-Size", fmt.Sprint(len(body)))
		w.Header().Set("Location", h.cdn.URL+"/blob/"+sum+"?sig=abc")
		w.WriteHeader(http.StatusFound)
		return
	}
	gs := sha1.New()
	fmt.Fprintf(gs, "blob %d\x00", len(body))
	gs.Write(body)
	w.Header().Set("ETag", `"`+hex.EncodeToString(gs.Sum(nil))+`"`)
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	if r.Method == http.MethodGet {
		w.Write(body)
	}
}

func (h *fakeHub) serveCDN(w http.ResponseWriter, r *http.Request) {
	h.record(r)
	sum := strings.TrimPrefix(r.URL.Path, "/blob/")
	h.mu.Lock()
	body, ok := h.blobs[sum]
	cut := h.cutOnce[sum] && r.Header.Get("Range") == ""
	if cut {
		delete(h.cutOnce, sum)
	}
	if h.corrupt[sum] {
		body = append([]byte(nil), body...)
		body[len(body)/2] ^= 0xff
	}
	h.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	if cut {
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.WriteHeader(http.StatusOK)
		w.Write(body[:len(body)/2])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // drop the connection mid-body
	}
	http.ServeContent(w, r, "", timeZero, bytes.NewReader(body))
}

func (h *fakeHub) client(t *testing.T, cache string) (*Client, *bytes.Buffer) {
	var prog bytes.Buffer
	return &Client{Endpoint: h.hub.URL, CacheDir: cache, Progress: &prog}, &prog
}

func weights(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) + seed
	}
	return b
}

func tinyRepo() map[string][]byte {
	return map[string][]byte{
		"config.json":       []byte(`{"model_type":"gpt2"}`),
		"tokenizer.json":    []byte(`{"model":{}}`),
		"README.md":         []byte("not fetched"),
		"pytorch_model.bin": []byte("not fetched"),
		"model.safetensors": weights(300000, 1),
	}
}

func readAll(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDownloadThenCache(t *testing.T) {
	h := newFakeHub(t)
	files := tinyRepo()
	repo := h.addRepo("org/tiny", false, files)
	cache := t.TempDir()
	c, prog := h.client(t, cache)
	dir, err := c.Resolve(context.Background(), "org/tiny")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(cache, "models--org--tiny", "snapshots", repo.commit); dir != want {
		t.Fatalf("dir %s want %s", dir, want)
	}
	for _, n := range []string{"config.json", "tokenizer.json", "model.safetensors"} {
		if !bytes.Equal(readAll(t, filepath.Join(dir, n)), files[n]) {
			t.Errorf("%s differs", n)
		}
		link, err := os.Readlink(filepath.Join(dir, n))
		if err != nil || !strings.HasPrefix(link, "../../blobs/") {
			t.Errorf("%s: link %q, %v", n, link, err)
		}
	}
	for _, n := range []string{"README.md", "pytorch_model.bin"} {
		if _, err := os.Lstat(filepath.Join(dir, n)); err == nil {
			t.Errorf("%s fetched", n)
		}
	}
	if ref := readAll(t, filepath.Join(cache, "models--org--tiny", "refs", "main")); string(ref) != repo.commit {
		t.Errorf("refs/main = %q", ref)
	}
	s := sha256.Sum256(files["model.safetensors"])
	if _, err := os.Stat(filepath.Join(cache, "models--org--tiny", "blobs", hex.EncodeToString(s[:]))); err != nil {
		t.Errorf("LFS blob not named by its sha256: %v", err)
	}
	if !strings.Contains(prog.String(), "hub: downloading org/tiny model.safetensors") {
		t.Errorf("progress: %q", prog.String())
	}
	// Found again without any request, also offline, also by commit hash.
	n := len(h.requests())
	c.Offline = true
	for _, arg := range []string{"org/tiny", "org/tiny@main", "org/tiny@" + repo.commit} {
		d2, err := c.Resolve(context.Background(), arg)
		if err != nil || d2 != dir {
			t.Errorf("%s: %s, %v", arg, d2, err)
		}
	}
	if len(h.requests()) != n {
		t.Errorf("cached resolve made requests: %v", h.requests()[n:])
	}
}

func TestShardedDownload(t *testing.T) {
	h := newFakeHub(t)
	files := map[string][]byte{
		"config.json":                      []byte(`{}`),
		"model.safetensors.index.json":     []byte(`{"metadata":{"total_size":10},"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}}`),
		"model-00001-of-00002.safetensors": weights(5000, 2),
		"model-00002-of-00002.safetensors": weights(7000, 3),
		"model-00009-of-00009.safetensors": weights(10, 4), // not in the index: not fetched
	}
	h.addRepo("gpt2-xl", false, files)
	c, _ := h.client(t, t.TempDir())
	dir, err := c.Resolve(context.Background(), "gpt2-xl")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(dir, "models--gpt2-xl") {
		t.Errorf("dir %s", dir)
	}
	for _, n := range []string{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"} {
		if !bytes.Equal(readAll(t, filepath.Join(dir, n)), files[n]) {
			t.Errorf("%s differs", n)
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, "model-00009-of-00009.safetensors")); err == nil {
		t.Error("unlisted shard fetched")
	}
}

func TestResumeAfterInterruptedTransfer(t *testing.T) {
	h := newFakeHub(t)
	files := tinyRepo()
	h.addRepo("org/tiny", false, files)
	s := sha256.Sum256(files["model.safetensors"])
	sum := hex.EncodeToString(s[:])
	h.cutOnce[sum] = true
	c, prog := h.client(t, t.TempDir())
	dir, err := c.Resolve(context.Background(), "org/tiny")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readAll(t, filepath.Join(dir, "model.safetensors")), files["model.safetensors"]) {
		t.Fatal("resumed file differs")
	}
	want := fmt.Sprintf(`GET /blob/%s range="bytes=%d-"`, sum, len(files["model.safetensors"])/2)
	found := false
	for _, r := range h.requests() {
		found = found || strings.HasPrefix(r, want)
	}
	if !found {
		t.Errorf("no request %q in %v", want, h.requests())
	}
	if !strings.Contains(prog.String(), "resuming") {
		t.Errorf("progress %q", prog.String())
	}
}

func TestResumeLeftoverPartialFile(t *testing.T) {
	h := newFakeHub(t)
	files := tinyRepo()
	h.addRepo("org/tiny", false, files)
	s := sha256.Sum256(files["model.safetensors"])
	sum := hex.EncodeToString(s[:])
	cache := t.TempDir()
	blobs := filepath.Join(cache, "models--org--tiny", "blobs")
	os.MkdirAll(blobs, 0o755)
	os.WriteFile(filepath.Join(blobs, sum+".incomplete"), files["model.safetensors"][:12345], 0o644)
	c, _ := h.client(t, cache)
	dir, err := c.Resolve(context.Background(), "org/tiny")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readAll(t, filepath.Join(dir, "model.safetensors")), files["model.safetensors"]) {
		t.Fatal("resumed file differs")
	}
	var got []string
	for _, r := range h.requests() {
		if strings.HasPrefix(r, "GET /blob/") {
			got = append(got, r)
		}
	}
	if len(got) != 1 || !strings.Contains(got[0], `range="bytes=12345-"`) {
		t.Errorf("CDN requests %v", got)
	}
	if _, err := os.Stat(filepath.Join(blobs, sum+".incomplete")); !os.IsNotExist(err) {
		t.Error("partial file left behind")
	}
}

func TestChecksumMismatch(t *testing.T) {
	h := newFakeHub(t)
	files := tinyRepo()
	h.addRepo("org/tiny", false, files)
	s := sha256.Sum256(files["model.safetensors"])
	sum := hex.EncodeToString(s[:])
	h.corrupt[sum] = true
	cache := t.TempDir()
	c, _ := h.client(t, cache)
	_, err := c.Resolve(context.Background(), "org/tiny")
	if err == nil || !strings.Contains(err.Error(), "checksum mismatch") || !strings.Contains(err.Error(), "model.safetensors") {
		t.Fatalf("err = %v", err)
	}
	blobs := filepath.Join(cache, "models--org--tiny", "blobs")
	for _, n := range []string{sum, sum + ".incomplete"} {
		if _, err := os.Stat(filepath.Join(blobs, n)); !os.IsNotExist(err) {
			t.Errorf("%s kept after a bad checksum", n)
		}
	}
	// A later clean transfer succeeds.
	h.corrupt[sum] = false
	if _, err := c.Resolve(context.Background(), "org/tiny"); err != nil {
		t.Fatal(err)
	}
}

func TestAuthAndErrors(t *testing.T) {
	h := newFakeHub(t)
	h.addRepo("org/private", true, tinyRepo())
	h.addRepo("org/tiny", false, tinyRepo())
	c, prog := h.client(t, t.TempDir())
	ctx := context.Background()

	_, err := c.Resolve(ctx, "org/private")
	if err == nil || !strings.Contains(err.Error(), "HTTP 401") || !strings.Contains(err.Error(), "set HF_TOKEN") {
		t.Errorf("no token: %v", err)
	}
	c.Token = "wrong"
	if _, err = c.Resolve(ctx, "org/private"); err == nil || !strings.Contains(err.Error(), "token in HF_TOKEN was refused") {
		t.Errorf("wrong token: %v", err)
	}
	c.Token = secret
	if _, err := c.Resolve(ctx, "org/private"); err != nil {
		t.Fatalf("with token: %v", err)
	}
	if _, err = c.Resolve(ctx, "org/missing"); err == nil || !strings.Contains(err.Error(), "HTTP 404") || !strings.Contains(err.Error(), "repository not found") {
		t.Errorf("missing repo: %v", err)
	}
	if _, err = c.Resolve(ctx, "org/tiny@v9"); err == nil || !strings.Contains(err.Error(), "revision not found") {
		t.Errorf("missing revision: %v", err)
	}
	if strings.Contains(prog.String(), secret) {
		t.Error("token printed in progress")
	}
	for _, r := range h.requests() {
		if strings.HasPrefix(r, "GET /blob/") && strings.Contains(r, "Bearer") {
			t.Errorf("token sent to the CDN: %s", r)
		}
	}
}

func TestNoSafetensors(t *testing.T) {
	h := newFakeHub(t)
	h.addRepo("org/old", false, map[string][]byte{"config.json": []byte(`{}`), "pytorch_model.bin": []byte("x")})
	c, _ := h.client(t, t.TempDir())
	if _, err := c.Resolve(context.Background(), "org/old"); err == nil || !strings.Contains(err.Error(), "no safetensors weights") {
		t.Errorf("err = %v", err)
	}
}

func TestOfflineAndLocal(t *testing.T) {
	h := newFakeHub(t)
	h.addRepo("org/tiny", false, tinyRepo())
	c, _ := h.client(t, t.TempDir())
	c.Offline = true
	if _, err := c.Resolve(context.Background(), "org/tiny"); err == nil || !strings.Contains(err.Error(), "offline") {
		t.Errorf("offline: %v", err)
	}
	if len(h.requests()) != 0 {
		t.Errorf("offline made requests %v", h.requests())
	}
	local := t.TempDir()
	if d, err := c.Resolve(context.Background(), local); err != nil || d != local {
		t.Errorf("local dir: %s, %v", d, err)
	}
	if _, err := c.Resolve(context.Background(), "./no/such/dir"); err == nil || !strings.Contains(err.Error(), "no such directory") {
		t.Errorf("missing dir: %v", err)
	}
	f := filepath.Join(local, "x")
	os.WriteFile(f, nil, 0o644)
	if _, err := c.Resolve(context.Background(), f); err == nil || !strings.Contains(err.Error(), "is a file") {
		t.Errorf("file: %v", err)
	}
}

// TestTransformersCacheLayout builds a cache the way huggingface_hub leaves it and finds it.
func TestTransformersCacheLayout(t *testing.T) {
	cache := t.TempDir()
	commit := strings.Repeat("ab", 20)
	root := filepath.Join(cache, "models--openlm-research--open_llama_3b")
	snap := filepath.Join(root, "snapshots", commit)
	os.MkdirAll(snap, 0o755)
	os.MkdirAll(filepath.Join(root, "blobs"), 0o755)
	os.MkdirAll(filepath.Join(root, "refs"), 0o755)
	os.WriteFile(filepath.Join(root, "refs", "main"), []byte(commit), 0o644)
	for n, b := range map[string]string{"config.json": "{}", "model.safetensors.index.json": `{"weight_map":{"x":"model-00001-of-00001.safetensors"}}`, "model-00001-of-00001.safetensors": "w"} {
		blob := filepath.Join(root, "blobs", fmt.Sprintf("%x", sha256.Sum256([]byte(n))))
		os.WriteFile(blob, []byte(b), 0o644)
		os.Symlink("../../blobs/"+filepath.Base(blob), filepath.Join(snap, n))
	}
	c := &Client{CacheDir: cache, Offline: true}
	d, err := c.Resolve(context.Background(), "openlm-research/open_llama_3b")
	if err != nil || d != snap {
		t.Fatalf("%s, %v", d, err)
	}
	// A missing shard makes the snapshot incomplete.
	os.Remove(filepath.Join(snap, "model-00001-of-00001.safetensors"))
	if _, err := c.Resolve(context.Background(), "openlm-research/open_llama_3b"); err == nil {
		t.Error("incomplete snapshot accepted")
	}
}

func TestParseID(t *testing.T) {
	good := map[string][2]string{
		"gpt2":                             {"gpt2", "main"},
		"gpt2-xl@v1.0":                     {"gpt2-xl", "v1.0"},
		"openlm-research/open_llama_3b":    {"openlm-research/open_llama_3b", "main"},
		"org/m@refs/pr/1":                  {"org/m", "refs/pr/1"},
		"org/m@" + strings.Repeat("0", 40): {"org/m", strings.Repeat("0", 40)},
	}
	for in, want := range good {
		r, v, err := ParseID(in)
		if err != nil || r != want[0] || v != want[1] {
			t.Errorf("ParseID(%q) = %q %q %v", in, r, v, err)
		}
	}
	for _, in := range []string{"", "a/b/c", "a--b", "../x", "org/m@", "org/m@../../x", "-x", "a b", "org/.."} {
		if _, _, err := ParseID(in); err == nil {
			t.Errorf("ParseID(%q) accepted", in)
		}
	}
}

func TestFromEnv(t *testing.T) {
	home := t.TempDir()
	t.Setenv(EnvHome, home)
	t.Setenv(EnvCache, "")
	t.Setenv(EnvEndpoint, "http://example.invalid/")
	t.Setenv(EnvToken, "")
	t.Setenv(EnvOffline, "1")
	os.WriteFile(filepath.Join(home, "token"), []byte("hf_file\n"), 0o600)
	c := FromEnv()
	if c.CacheDir != filepath.Join(home, "hub") || c.Endpoint != "http://example.invalid" || !c.Offline || c.Token != "hf_file" {
		t.Errorf("%+v", c)
	}
	t.Setenv(EnvCache, "/x/cache")
	t.Setenv(EnvToken, "hf_env")
	t.Setenv(EnvOffline, "0")
	t.Setenv("TRANSFORMERS_OFFLINE", "")
	c = FromEnv()
	if c.CacheDir != "/x/cache" || c.Token != "hf_env" || c.Offline {
		t.Errorf("%+v", c)
	}
}
