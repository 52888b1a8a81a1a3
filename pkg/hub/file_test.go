package hub_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cpo-toolchain/cpo/pkg/hub"
	"github.com/cpo-toolchain/cpo/pkg/hub/hubtest"
)

const (
	dollyRepo = "databricks/databricks-dolly-15k"
	dollyFile = "databricks-dolly-15k.jsonl"
	dollyURI  = "hf://datasets/" + dollyRepo + "/" + dollyFile
)

// dollyFiles is a small stand-in for the Dolly dataset repository: the JSONL (LFS, fetched
// through the CDN), a README (a small git file) and a nested Parquet file.
func dollyFiles() map[string][]byte {
	var rows strings.Builder
	for i := 0; rows.Len() < 200000; i++ {
		fmt.Fprintf(&rows, `{"instruction":"Question %d?","context":"","response":"Answer %d.","category":"open_qa"}`+"\n", i, i)
	}
	return map[string][]byte{
		dollyFile:                            []byte(rows.String()),
		"README.md":                          []byte("# dolly\n"),
		"data/train-00000-of-00001.parquet":  weights(5000, 9),
		"data/extra/notes-00000.parquet.txt": []byte("nested small file"),
	}
}

func requestsWith(h *hubtest.Server, prefix string) []string {
	var out []string
	for _, r := range h.Requests() {
		if strings.HasPrefix(r, prefix) {
			out = append(out, r)
		}
	}
	return out
}

func TestDatasetFileDownloadThenCache(t *testing.T) {
	h := hubtest.New(t)
	files := dollyFiles()
	repo := h.AddDataset(dollyRepo, false, files)
	// A model of the same name is another repository in another cache folder.
	model := h.AddRepo(dollyRepo, false, map[string][]byte{"README.md": []byte("the model's README")})
	cache := t.TempDir()
	c, prog := h.Client(cache)
	ctx := context.Background()

	p, err := c.ResolveFile(ctx, dollyURI)
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(cache, "datasets--databricks--databricks-dolly-15k")
	if want := filepath.Join(root, "snapshots", repo.Commit, dollyFile); p != want {
		t.Fatalf("path %s want %s", p, want)
	}
	if !bytes.Equal(readAll(t, p), files[dollyFile]) {
		t.Fatal("content differs")
	}
	if link, err := os.Readlink(p); err != nil || link != "../../blobs/"+hubtest.SHA256(files[dollyFile]) {
		t.Errorf("link %q, %v", link, err)
	}
	if ref := readAll(t, filepath.Join(root, "refs", "main")); string(ref) != repo.Commit {
		t.Errorf("refs/main = %q", ref)
	}
	if _, err := os.Stat(filepath.Join(cache, ".locks", "datasets--databricks--databricks-dolly-15k")); err != nil {
		t.Errorf("no lock directory: %v", err)
	}
	if got := requestsWith(h, "GET /api/datasets/"+dollyRepo+"/revision/main"); len(got) != 1 {
		t.Errorf("API requests %v", h.Requests())
	}
	if got := requestsWith(h, "HEAD /datasets/"+dollyRepo+"/resolve/"+repo.Commit+"/"+dollyFile); len(got) != 1 {
		t.Errorf("resolve requests %v", h.Requests())
	}
	if !strings.Contains(prog.String(), "hub: downloading datasets/"+dollyRepo+" "+dollyFile) {
		t.Errorf("progress %q", prog.String())
	}
	// Only the file asked for.
	for _, n := range []string{"README.md", "data"} {
		if _, err := os.Lstat(filepath.Join(root, "snapshots", repo.Commit, n)); err == nil {
			t.Errorf("%s fetched", n)
		}
	}

	// A small (git, sha1-checked) file, a nested file and the model's file of the same name.
	for _, f := range []string{"README.md", "data/train-00000-of-00001.parquet", "data/extra/notes-00000.parquet.txt"} {
		q, err := c.File(ctx, hub.Dataset, dollyRepo, "", f)
		if err != nil {
			t.Fatal(err)
		}
		if q != filepath.Join(root, "snapshots", repo.Commit, filepath.FromSlash(f)) || !bytes.Equal(readAll(t, q), files[f]) {
			t.Errorf("%s: %s", f, q)
		}
	}
	mp, err := c.ResolveFile(ctx, "hf://"+dollyRepo+"/README.md")
	if err != nil {
		t.Fatal(err)
	}
	if mp != filepath.Join(cache, "models--databricks--databricks-dolly-15k", "snapshots", model.Commit, "README.md") || string(readAll(t, mp)) != "the model's README" {
		t.Errorf("model file %s", mp)
	}

	// Found again without any request, offline too, by branch or by commit.
	n := len(h.Requests())
	c.Offline = true
	for _, arg := range []string{dollyURI, "hf://datasets/" + dollyRepo + "@main/" + dollyFile, "hf://datasets/" + dollyRepo + "@" + repo.Commit + "/" + dollyFile} {
		if q, err := c.ResolveFile(ctx, arg); err != nil || q != p {
			t.Errorf("%s: %s, %v", arg, q, err)
		}
	}
	if q, err := c.File(ctx, hub.Dataset, dollyRepo, "main", "README.md"); err != nil || !strings.HasSuffix(q, "README.md") {
		t.Errorf("README offline: %s, %v", q, err)
	}
	if len(h.Requests()) != n {
		t.Errorf("cached files made requests: %v", h.Requests()[n:])
	}
	// Offline and not cached: the error names the repository, the file and the cache.
	_, err = c.ResolveFile(ctx, "hf://datasets/"+dollyRepo+"/other.jsonl")
	if err == nil || !strings.Contains(err.Error(), "datasets/"+dollyRepo+"@main file other.jsonl") || !strings.Contains(err.Error(), "offline") || !strings.Contains(err.Error(), cache) {
		t.Errorf("offline miss: %v", err)
	}

	// The package function reads the environment; a local path comes back unchanged.
	t.Setenv(hub.EnvCache, cache)
	t.Setenv(hub.EnvOffline, "1")
	t.Setenv(hub.EnvEndpoint, h.Hub.URL)
	if q, err := hub.ResolveFile(ctx, dollyURI); err != nil || q != p {
		t.Errorf("hub.ResolveFile: %s, %v", q, err)
	}
	for _, local := range []string{"data/dolly.jsonl", "/no/such/file", "-", "hf:/x"} {
		if q, err := hub.ResolveFile(ctx, local); err != nil || q != local {
			t.Errorf("local %q: %q, %v", local, q, err)
		}
	}
	if len(h.Requests()) != n {
		t.Errorf("offline made requests: %v", h.Requests()[n:])
	}
}

// TestDatasetFileFromHuggingFaceCache finds a file in a cache laid out by huggingface_hub
// (hf_hub_download(repo_type="dataset")) without a server.
func TestDatasetFileFromHuggingFaceCache(t *testing.T) {
	cache := t.TempDir()
	commit := strings.Repeat("cd", 20)
	root := filepath.Join(cache, "datasets--databricks--databricks-dolly-15k")
	os.MkdirAll(filepath.Join(root, "snapshots", commit), 0o755)
	os.MkdirAll(filepath.Join(root, "blobs"), 0o755)
	os.MkdirAll(filepath.Join(root, "refs"), 0o755)
	os.WriteFile(filepath.Join(root, "refs", "main"), []byte(commit), 0o644)
	blob := strings.Repeat("e", 64)
	os.WriteFile(filepath.Join(root, "blobs", blob), []byte(`{"instruction":"x"}`+"\n"), 0o644)
	os.Symlink("../../blobs/"+blob, filepath.Join(root, "snapshots", commit, dollyFile))
	c := &hub.Client{CacheDir: cache, Offline: true}
	p, err := c.ResolveFile(context.Background(), dollyURI)
	if err != nil || p != filepath.Join(root, "snapshots", commit, dollyFile) {
		t.Fatalf("%s, %v", p, err)
	}
	if q, ok := hub.CachedFile(cache, hub.Dataset, dollyRepo, commit, dollyFile); !ok || q != p {
		t.Errorf("CachedFile by commit: %s %v", q, ok)
	}
	if _, ok := hub.CachedFile(cache, hub.Model, dollyRepo, "main", dollyFile); ok {
		t.Error("a dataset file found as a model file")
	}
	// A dangling link (blob removed) is not a cached file.
	os.Remove(filepath.Join(root, "blobs", blob))
	if _, err := c.ResolveFile(context.Background(), dollyURI); err == nil || !strings.Contains(err.Error(), "offline") {
		t.Errorf("dangling link: %v", err)
	}
}

func TestDatasetFileResume(t *testing.T) {
	h := hubtest.New(t)
	files := dollyFiles()
	h.AddDataset(dollyRepo, false, files)
	sum := hubtest.SHA256(files[dollyFile])
	h.CutOnce(sum)
	c, prog := h.Client(t.TempDir())
	p, err := c.ResolveFile(context.Background(), dollyURI)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readAll(t, p), files[dollyFile]) {
		t.Fatal("resumed file differs")
	}
	if got := requestsWith(h, fmt.Sprintf(`GET /blob/%s range="bytes=%d-"`, sum, len(files[dollyFile])/2)); len(got) != 1 {
		t.Errorf("no resumed request in %v", h.Requests())
	}
	if !strings.Contains(prog.String(), "resuming") {
		t.Errorf("progress %q", prog.String())
	}

	// A partial file left by an earlier process is resumed too.
	cache := t.TempDir()
	blobs := filepath.Join(cache, "datasets--databricks--databricks-dolly-15k", "blobs")
	os.MkdirAll(blobs, 0o755)
	os.WriteFile(filepath.Join(blobs, sum+".incomplete"), files[dollyFile][:54321], 0o644)
	c, _ = h.Client(cache)
	n := len(requestsWith(h, "GET /blob/"))
	if p, err = c.ResolveFile(context.Background(), dollyURI); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readAll(t, p), files[dollyFile]) {
		t.Fatal("resumed file differs")
	}
	if got := requestsWith(h, "GET /blob/")[n:]; len(got) != 1 || !strings.Contains(got[0], `range="bytes=54321-"`) {
		t.Errorf("CDN requests %v", got)
	}
}

func TestDatasetFileChecksumMismatch(t *testing.T) {
	h := hubtest.New(t)
	files := dollyFiles()
	h.AddDataset(dollyRepo, false, files)
	sum := hubtest.SHA256(files[dollyFile])
	h.Corrupt(sum, true)
	cache := t.TempDir()
	c, _ := h.Client(cache)
	_, err := c.ResolveFile(context.Background(), dollyURI)
	if err == nil || !strings.Contains(err.Error(), "checksum mismatch") || !strings.Contains(err.Error(), "datasets/"+dollyRepo+" file "+dollyFile) {
		t.Fatalf("err = %v", err)
	}
	root := filepath.Join(cache, "datasets--databricks--databricks-dolly-15k")
	for _, n := range []string{"blobs/" + sum, "blobs/" + sum + ".incomplete", "refs/main"} {
		if _, err := os.Stat(filepath.Join(root, n)); !os.IsNotExist(err) {
			t.Errorf("%s kept after a bad checksum", n)
		}
	}
	if _, ok := hub.CachedFile(cache, hub.Dataset, dollyRepo, "main", dollyFile); ok {
		t.Error("corrupt file cached")
	}
	h.Corrupt(sum, false)
	p, err := c.ResolveFile(context.Background(), dollyURI)
	if err != nil || !bytes.Equal(readAll(t, p), files[dollyFile]) {
		t.Fatalf("clean retry: %v", err)
	}
}

func TestDatasetFileErrors(t *testing.T) {
	h := hubtest.New(t)
	h.AddDataset(dollyRepo, false, dollyFiles())
	h.AddDataset("org/private-data", true, map[string][]byte{"x.jsonl": []byte("{}\n")})
	unlisted := h.AddDataset("org/unlisted", false, map[string][]byte{"a.jsonl": []byte("{}\n")})
	unlisted.NoSiblings = true
	c, prog := h.Client(t.TempDir())
	ctx := context.Background()

	// A file the repository does not have: named with the repository; similar files listed.
	_, err := c.ResolveFile(ctx, "hf://datasets/"+dollyRepo+"/databricks-dolly-15K.jsonl")
	var he *hub.HubError
	if err == nil || !errors.As(err, &he) || he.Status != http.StatusNotFound ||
		!strings.Contains(err.Error(), "datasets/"+dollyRepo+"@main file databricks-dolly-15K.jsonl: not in the repository") ||
		!strings.Contains(err.Error(), "it has "+dollyFile+", ") {
		t.Errorf("missing file: %v", err)
	}
	// Learnt from the resolve URL's 404 when the API lists no files.
	_, err = c.ResolveFile(ctx, "hf://datasets/org/unlisted/b.jsonl")
	if err == nil || !errors.As(err, &he) || he.Status != http.StatusNotFound ||
		!strings.Contains(err.Error(), "datasets/org/unlisted@") || !strings.Contains(err.Error(), "file b.jsonl: HTTP 404: file not found in the repository") {
		t.Errorf("missing file, 404 from resolve: %v", err)
	}
	if p, err := c.ResolveFile(ctx, "hf://datasets/org/unlisted/a.jsonl"); err != nil || string(readAll(t, p)) != "{}\n" {
		t.Errorf("listed by no one, fetched anyway: %v", err)
	}
	// A missing repository, a model id used as a dataset, a missing revision.
	h.AddRepo("org/a-model", false, map[string][]byte{"config.json": []byte("{}")})
	for _, arg := range []string{"hf://datasets/org/nothing/x.jsonl", "hf://datasets/org/a-model/config.json"} {
		_, err = c.ResolveFile(ctx, arg)
		if err == nil || !strings.Contains(err.Error(), "repository "+strings.TrimPrefix(strings.TrimSuffix(arg, "/"+filepath.Base(arg)), "hf://")+" revision main: HTTP 401") {
			t.Errorf("%s: %v", arg, err)
		}
	}
	if _, err = c.ResolveFile(ctx, "hf://datasets/"+dollyRepo+"@v9/"+dollyFile); err == nil || !strings.Contains(err.Error(), "revision v9: HTTP 404: revision not found") {
		t.Errorf("missing revision: %v", err)
	}
	// A private dataset wants the token, which never reaches the CDN or the messages.
	if _, err = c.ResolveFile(ctx, "hf://datasets/org/private-data/x.jsonl"); err == nil || !strings.Contains(err.Error(), "set HF_TOKEN") {
		t.Errorf("private without token: %v", err)
	}
	c.Token = hubtest.Token
	if _, err = c.ResolveFile(ctx, "hf://datasets/org/private-data/x.jsonl"); err != nil {
		t.Errorf("private with token: %v", err)
	}
	if strings.Contains(prog.String(), hubtest.Token) {
		t.Error("token printed")
	}
	for _, r := range requestsWith(h, "GET /blob/") {
		if strings.Contains(r, "Bearer") {
			t.Errorf("token sent to the CDN: %s", r)
		}
	}
	// Bad arguments never reach the hub.
	n := len(h.Requests())
	for _, bad := range []struct {
		kind            hub.Kind
		repo, rev, file string
		want            string
	}{
		{"space", "org/x", "main", "a", "unknown repository kind"},
		{hub.Dataset, "org/x/y", "main", "a", "invalid repository id"},
		{hub.Dataset, "org/x", "../main", "a", "invalid revision"},
		{hub.Dataset, "org/x", "main", "../a", "invalid file name"},
		{hub.Dataset, "org/x", "main", "a/", "invalid file name"},
		{hub.Dataset, "org/x", "main", "/a", "invalid file name"},
	} {
		if _, err := c.File(ctx, bad.kind, bad.repo, bad.rev, bad.file); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("File(%q, %q, %q, %q): %v", bad.kind, bad.repo, bad.rev, bad.file, err)
		}
	}
	if len(h.Requests()) != n {
		t.Errorf("bad arguments made requests %v", h.Requests()[n:])
	}
}

func uri(kind hub.Kind, repo, rev, path string) hub.URI {
	return hub.URI{Kind: kind, Repo: repo, Revision: rev, Path: path}
}

func TestParseURI(t *testing.T) {
	good := map[string]hub.URI{
		dollyURI: uri(hub.Dataset, dollyRepo, "main", dollyFile),
		"hf://datasets/org/name@v1.0/data/train-00000-of-00001.parquet":       uri(hub.Dataset, "org/name", "v1.0", "data/train-00000-of-00001.parquet"),
		"hf://datasets/org/name@refs/pr/12/a.jsonl":                           uri(hub.Dataset, "org/name", "refs/pr/12", "a.jsonl"),
		"hf://datasets/org/name@refs/convert/parquet/default/train/0.parquet": uri(hub.Dataset, "org/name", "refs/convert/parquet", "default/train/0.parquet"),
		"hf://datasets/org/name@feature%2Fx/a.jsonl":                          uri(hub.Dataset, "org/name", "feature/x", "a.jsonl"),
		"hf://datasets/org/name@" + strings.Repeat("0", 40) + "/a":            uri(hub.Dataset, "org/name", strings.Repeat("0", 40), "a"),
		"hf://openai-community/gpt2/config.json":                              uri(hub.Model, "openai-community/gpt2", "main", "config.json"),
		"hf://org/m@main/sub/dir/f.txt":                                       uri(hub.Model, "org/m", "main", "sub/dir/f.txt"),
		"hf://datasets/org/name/@weird.txt":                                   uri(hub.Dataset, "org/name", "main", "@weird.txt"),
	}
	for in, want := range good {
		u, err := hub.ParseURI(in)
		if err != nil || u != want {
			t.Errorf("ParseURI(%q) = %+v, %v; want %+v", in, u, err, want)
			continue
		}
		if back, err := hub.ParseURI(u.String()); err != nil || back != u {
			t.Errorf("%q: String() = %q parses to %+v, %v", in, u.String(), back, err)
		}
	}
	if s := uri(hub.Dataset, dollyRepo, "main", dollyFile).String(); s != dollyURI {
		t.Errorf("String() = %q", s)
	}
	bad := map[string]string{
		"datasets/org/name/a":             "does not start with hf://",
		"hf://":                           "no repository",
		"hf://datasets/":                  "no repository",
		"hf://datasets/org":               "no repository",
		"hf://datasets/org/name":          "no file path",
		"hf://datasets/org/name/":         "no file path",
		"hf://datasets/org/name@v1":       "no file path after the revision",
		"hf://datasets/org/name@/a":       "invalid revision",
		"hf://datasets/org/name@%zz/a":    "revision",
		"hf://datasets/org/name@..%2Fx/a": "invalid revision",
		"hf://datasets/org/name/../x":     "invalid file name",
		"hf://datasets/org/name/a//b":     "invalid file name",
		"hf://datasets/org/name/a/":       "invalid file name",
		"hf://datasets/org--x/name/a":     "invalid repository id",
		"hf://datasets//name/a":           "no repository",
		"hf://datasets/org/@v1/a":         "no repository",
		"hf://spaces/org/app/app.py":      "Spaces are not supported",
		"hf://models/org/m/config.json":   `without a "models/" prefix`,
		"hf://gpt2/config.json":           `no file path after the repository "gpt2/config.json"`,
		"hf://datasets/org/na me/a":       "invalid repository id",
	}
	for in, want := range bad {
		if u, err := hub.ParseURI(in); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "hf://datasets/ORG/NAME[@REV]/PATH") {
			t.Errorf("ParseURI(%q) = %+v, %v; want an error with %q", in, u, err, want)
		}
	}
	if !hub.IsURI(dollyURI) || hub.IsURI("/data/x.jsonl") || hub.IsURI("hf:/x") {
		t.Error("IsURI")
	}
}
