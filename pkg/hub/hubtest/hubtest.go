// Package hubtest is a fake Hugging Face hub for tests: model and dataset repositories, the
// revision API (/api/models/{repo}/revision/{rev}, /api/datasets/...), HEAD and GET on resolve
// URLs ({repo}/resolve/..., datasets/{repo}/resolve/...; small files answered directly with
// their git-sha1 ETag; LFS files (see IsLFS) redirected to a separate CDN server with
// X-Linked-Etag and X-Linked-Size), Range requests, private repositories behind a bearer
// token, and injected faults (a transfer cut half-way, a corrupted body). Nothing here
// contacts the real hub.
package hubtest

import (
	"bytes"
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

	"github.com/cpo-toolchain/cpo/pkg/hub"
)

// Token is the bearer token that private repositories accept.
const Token = "hf_s3cr3t_t0ken"

// Server is a running fake hub and its CDN.
type Server struct {
	Hub, CDN *httptest.Server

	mu      sync.Mutex
	repos   map[string]*Repo  // model repositories
	dsets   map[string]*Repo  // dataset repositories
	blobs   map[string][]byte // sha256 → content served by the CDN
	log     []string
	cutOnce map[string]bool
	corrupt map[string]bool
}

// Repo is one repository of the fake hub: every revision name in Refs points at Commit.
type Repo struct {
	Private bool
	Commit  string
	Refs    map[string]string
	Files   map[string][]byte
	// NoSiblings makes the revision API answer without the file list, so that a client learns
	// of a missing file only from the resolve URL's 404. Set it before the first request.
	NoSiblings bool
}

// IsLFS reports whether the fake hub stores a file in LFS (served through the CDN): weights
// (*.safetensors, *.bin) and data files (*.jsonl, *.parquet, *.arrow).
func IsLFS(name string) bool {
	for _, ext := range []string{".safetensors", ".bin", ".jsonl", ".parquet", ".arrow"} {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	return false
}

// SHA256 returns the hex sha256 of b (the ETag of an LFS file).
func SHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// New starts a fake hub, closed when the test ends.
func New(t testing.TB) *Server {
	h := &Server{repos: map[string]*Repo{}, dsets: map[string]*Repo{}, blobs: map[string][]byte{}, cutOnce: map[string]bool{}, corrupt: map[string]bool{}}
	h.CDN = httptest.NewServer(http.HandlerFunc(h.serveCDN))
	h.Hub = httptest.NewServer(http.HandlerFunc(h.serveHub))
	t.Cleanup(func() { h.Hub.Close(); h.CDN.Close() })
	return h
}

// AddRepo publishes files under name (e.g. "org/model") at a commit derived from the name,
// with the branch "main".
func (h *Server) AddRepo(name string, private bool, files map[string][]byte) *Repo {
	return h.add(h.repos, name, name, private, files)
}

// AddDataset publishes files under the dataset repository name (e.g.
// "databricks/databricks-dolly-15k"), served under /api/datasets/ and /datasets/, at a commit
// derived from "datasets/"+name, with the branch "main".
func (h *Server) AddDataset(name string, private bool, files map[string][]byte) *Repo {
	return h.add(h.dsets, name, "datasets/"+name, private, files)
}

func (h *Server) add(repos map[string]*Repo, name, seed string, private bool, files map[string][]byte) *Repo {
	h.mu.Lock()
	defer h.mu.Unlock()
	sum := sha1.Sum([]byte(seed))
	r := &Repo{Private: private, Commit: hex.EncodeToString(sum[:]), Files: files}
	r.Refs = map[string]string{"main": r.Commit}
	for n, b := range files {
		if IsLFS(n) {
			h.blobs[SHA256(b)] = b
		}
	}
	repos[name] = r
	return r
}

// AddDir publishes the regular files of a directory (e.g. a checkpoint) under name.
func (h *Server) AddDir(t testing.TB, name string, dir string) *Repo {
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, e := range ents {
		if e.Type().IsRegular() {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			files[e.Name()] = b
		}
	}
	return h.AddRepo(name, false, files)
}

// CutOnce makes the next full (non-Range) CDN transfer of the blob with this sha256 stop
// half-way by dropping the connection.
func (h *Server) CutOnce(sha string) { h.mu.Lock(); h.cutOnce[sha] = true; h.mu.Unlock() }

// Corrupt makes the CDN serve the blob with this sha256 with one byte flipped (or not).
func (h *Server) Corrupt(sha string, on bool) { h.mu.Lock(); h.corrupt[sha] = on; h.mu.Unlock() }

// Requests returns every request so far as "METHOD path range=%q auth=%q".
func (h *Server) Requests() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.log...)
}

// Client returns a hub client for this server with the given cache directory, and the
// Use points the environment of test t at this fake hub, as a tool run would see it: the hub
// cache is cache, HF_HOME a fresh directory, and no token, offline mode or transformers
// setting leaks in from the machine. t.Setenv restores everything when the test ends.
func (h *Server) Use(t testing.TB, cache string) {
	t.Helper()
	t.Setenv(hub.EnvHome, t.TempDir())
	t.Setenv(hub.EnvCache, cache)
	t.Setenv(hub.EnvEndpoint, h.Hub.URL)
	t.Setenv(hub.EnvToken, "")
	t.Setenv(hub.EnvOffline, "")
	t.Setenv("TRANSFORMERS_OFFLINE", "")
}

// buffer that receives its progress reports.
func (h *Server) Client(cache string) (*hub.Client, *bytes.Buffer) {
	var prog bytes.Buffer
	return &hub.Client{Endpoint: h.Hub.URL, CacheDir: cache, Progress: &prog}, &prog
}

func (h *Server) record(r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.log = append(h.log, fmt.Sprintf("%s %s range=%q auth=%q", r.Method, r.URL.Path, r.Header.Get("Range"), r.Header.Get("Authorization")))
}

// lookup finds the repository of a path "<repo>/<rest>" in repos, repo being one or two
// segments.
func (h *Server) lookup(repos map[string]*Repo, p string) (*Repo, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	parts := strings.SplitN(p, "/", 3)
	if len(parts) >= 3 {
		if r, ok := repos[parts[0]+"/"+parts[1]]; ok {
			return r, parts[2]
		}
	}
	if len(parts) >= 2 {
		if r, ok := repos[parts[0]]; ok {
			return r, strings.Join(parts[1:], "/")
		}
	}
	return nil, ""
}

func (h *Server) serveHub(w http.ResponseWriter, r *http.Request) {
	h.record(r)
	authed := r.Header.Get("Authorization") == "Bearer "+Token
	p := strings.TrimPrefix(r.URL.Path, "/")
	repos, api := h.repos, false
	switch {
	case strings.HasPrefix(p, "api/models/"):
		p, api = strings.TrimPrefix(p, "api/models/"), true
	case strings.HasPrefix(p, "api/datasets/"):
		p, api, repos = strings.TrimPrefix(p, "api/datasets/"), true, h.dsets
	case strings.HasPrefix(p, "datasets/"):
		p, repos = strings.TrimPrefix(p, "datasets/"), h.dsets
	}
	repo, rest := h.lookup(repos, p)
	if repo == nil || repo.Private && !authed {
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
	commit := repo.Refs[rev]
	if rev == repo.Commit {
		commit = rev
	}
	if commit == "" {
		w.Header().Set("X-Error-Code", "RevisionNotFound")
		w.WriteHeader(http.StatusNotFound)
		return
	}
	if api {
		ans := map[string]any{"sha": commit}
		if !repo.NoSiblings {
			sib := []map[string]string{}
			for n := range repo.Files {
				sib = append(sib, map[string]string{"rfilename": n})
			}
			ans["siblings"] = sib
		}
		json.NewEncoder(w).Encode(ans)
		return
	}
	body, ok := repo.Files[file]
	if !ok {
		w.Header().Set("X-Error-Code", "EntryNotFound")
		w.WriteHeader(http.StatusNotFound)
		return
	}
	w.Header().Set("X-Repo-Commit", commit)
	if IsLFS(file) {
		sum := SHA256(body)
		w.Header().Set("X-Linked-Etag", `"`+sum+`"`)
		w.Header().Set("X-Linked-Size", fmt.Sprint(len(body)))
		w.Header().Set("Location", h.CDN.URL+"/blob/"+sum+"?sig=abc")
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

func (h *Server) serveCDN(w http.ResponseWriter, r *http.Request) {
	h.record(r)
	sum := strings.TrimPrefix(r.URL.Path, "/blob/")
	h.mu.Lock()
	body, ok := h.blobs[sum]
	cut := h.cutOnce[sum] && r.Header.Get("Range") == ""
	if cut {
		delete(h.cutOnce, sum)
	}
	if ok && h.corrupt[sum] {
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
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}
