package hub_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cpo-toolchain/cpo/pkg/hub"
	"github.com/cpo-toolchain/cpo/pkg/hub/hubtest"
)

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
	h := hubtest.New(t)
	files := tinyRepo()
	repo := h.AddRepo("org/tiny", false, files)
	cache := t.TempDir()
	c, prog := h.Client(cache)
	dir, err := c.Resolve(context.Background(), "org/tiny")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(cache, "models--org--tiny", "snapshots", repo.Commit); dir != want {
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
	if ref := readAll(t, filepath.Join(cache, "models--org--tiny", "refs", "main")); string(ref) != repo.Commit {
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
	n := len(h.Requests())
	c.Offline = true
	for _, arg := range []string{"org/tiny", "org/tiny@main", "org/tiny@" + repo.Commit} {
		d2, err := c.Resolve(context.Background(), arg)
		if err != nil || d2 != dir {
			t.Errorf("%s: %s, %v", arg, d2, err)
		}
	}
	if len(h.Requests()) != n {
		t.Errorf("cached resolve made requests: %v", h.Requests()[n:])
	}
}

func TestShardedDownload(t *testing.T) {
	h := hubtest.New(t)
	files := map[string][]byte{
		"config.json":                      []byte(`{}`),
		"model.safetensors.index.json":     []byte(`{"metadata":{"total_size":10},"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}}`),
		"model-00001-of-00002.safetensors": weights(5000, 2),
		"model-00002-of-00002.safetensors": weights(7000, 3),
		"model-00009-of-00009.safetensors": weights(10, 4), // not in the index: not fetched
	}
	h.AddRepo("gpt2-xl", false, files)
	c, _ := h.Client(t.TempDir())
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
	h := hubtest.New(t)
	files := tinyRepo()
	h.AddRepo("org/tiny", false, files)
	s := sha256.Sum256(files["model.safetensors"])
	sum := hex.EncodeToString(s[:])
	h.CutOnce(sum)
	c, prog := h.Client(t.TempDir())
	dir, err := c.Resolve(context.Background(), "org/tiny")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readAll(t, filepath.Join(dir, "model.safetensors")), files["model.safetensors"]) {
		t.Fatal("resumed file differs")
	}
	want := fmt.Sprintf(`GET /blob/%s range="bytes=%d-"`, sum, len(files["model.safetensors"])/2)
	found := false
	for _, r := range h.Requests() {
		found = found || strings.HasPrefix(r, want)
	}
	if !found {
		t.Errorf("no request %q in %v", want, h.Requests())
	}
	if !strings.Contains(prog.String(), "resuming") {
		t.Errorf("progress %q", prog.String())
	}
}

func TestResumeLeftoverPartialFile(t *testing.T) {
	h := hubtest.New(t)
	files := tinyRepo()
	h.AddRepo("org/tiny", false, files)
	s := sha256.Sum256(files["model.safetensors"])
	sum := hex.EncodeToString(s[:])
	cache := t.TempDir()
	blobs := filepath.Join(cache, "models--org--tiny", "blobs")
	os.MkdirAll(blobs, 0o755)
	os.WriteFile(filepath.Join(blobs, sum+".incomplete"), files["model.safetensors"][:12345], 0o644)
	c, _ := h.Client(cache)
	dir, err := c.Resolve(context.Background(), "org/tiny")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readAll(t, filepath.Join(dir, "model.safetensors")), files["model.safetensors"]) {
		t.Fatal("resumed file differs")
	}
	var got []string
	for _, r := range h.Requests() {
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
	h := hubtest.New(t)
	files := tinyRepo()
	h.AddRepo("org/tiny", false, files)
	s := sha256.Sum256(files["model.safetensors"])
	sum := hex.EncodeToString(s[:])
	h.Corrupt(sum, true)
	cache := t.TempDir()
	c, _ := h.Client(cache)
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
	h.Corrupt(sum, false)
	if _, err := c.Resolve(context.Background(), "org/tiny"); err != nil {
		t.Fatal(err)
	}
}

func TestAuthAndErrors(t *testing.T) {
	h := hubtest.New(t)
	h.AddRepo("org/private", true, tinyRepo())
	h.AddRepo("org/tiny", false, tinyRepo())
	c, prog := h.Client(t.TempDir())
	ctx := context.Background()

	_, err := c.Resolve(ctx, "org/private")
	if err == nil || !strings.Contains(err.Error(), "HTTP 401") || !strings.Contains(err.Error(), "set HF_TOKEN") {
		t.Errorf("no token: %v", err)
	}
	c.Token = "wrong"
	if _, err = c.Resolve(ctx, "org/private"); err == nil || !strings.Contains(err.Error(), "token in HF_TOKEN was refused") {
		t.Errorf("wrong token: %v", err)
	}
	c.Token = hubtest.Token
	if _, err := c.Resolve(ctx, "org/private"); err != nil {
		t.Fatalf("with token: %v", err)
	}
	if _, err = c.Resolve(ctx, "org/missing"); err == nil || !strings.Contains(err.Error(), "HTTP 404") || !strings.Contains(err.Error(), "repository not found") {
		t.Errorf("missing repo: %v", err)
	}
	if _, err = c.Resolve(ctx, "org/tiny@v9"); err == nil || !strings.Contains(err.Error(), "revision not found") {
		t.Errorf("missing revision: %v", err)
	}
	if strings.Contains(prog.String(), hubtest.Token) {
		t.Error("token printed in progress")
	}
	for _, r := range h.Requests() {
		if strings.HasPrefix(r, "GET /blob/") && strings.Contains(r, "Bearer") {
			t.Errorf("token sent to the CDN: %s", r)
		}
	}
}

func TestPyTorchWeightsWhenNoSafetensors(t *testing.T) {
	h := hubtest.New(t)
	h.AddRepo("org/old", false, map[string][]byte{"config.json": []byte(`{}`), "pytorch_model.bin": weights(1000, 5), "tf_model.h5": []byte("x")})
	h.AddRepo("org/tf", false, map[string][]byte{"config.json": []byte(`{}`), "tf_model.h5": []byte("x")})
	h.AddRepo("org/both", false, map[string][]byte{"config.json": []byte(`{}`), "pytorch_model.bin": []byte("x"), "model.safetensors": []byte("y")})
	c, _ := h.Client(t.TempDir())
	dir, err := c.Resolve(context.Background(), "org/old")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readAll(t, filepath.Join(dir, "pytorch_model.bin")), weights(1000, 5)) {
		t.Error("pytorch_model.bin differs")
	}
	if _, err := c.Resolve(context.Background(), "org/tf"); err == nil || !strings.Contains(err.Error(), "no weights this project reads") {
		t.Errorf("err = %v", err)
	}
	dir, err = c.Resolve(context.Background(), "org/both")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "pytorch_model.bin")); err == nil {
		t.Error("pytorch_model.bin fetched although safetensors exist")
	}
}

func TestOfflineAndLocal(t *testing.T) {
	h := hubtest.New(t)
	h.AddRepo("org/tiny", false, tinyRepo())
	c, _ := h.Client(t.TempDir())
	c.Offline = true
	if _, err := c.Resolve(context.Background(), "org/tiny"); err == nil || !strings.Contains(err.Error(), "offline") {
		t.Errorf("offline: %v", err)
	}
	if len(h.Requests()) != 0 {
		t.Errorf("offline made requests %v", h.Requests())
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

// TestMistypedLocalPath: "dir/name" with dir a local directory but no dir/name reads as a hub
// id; when the hub has no such repository the error says the directory is missing.
func TestMistypedLocalPath(t *testing.T) {
	h := hubtest.New(t)
	c, _ := h.Client(t.TempDir())
	wd := t.TempDir()
	if err := os.Mkdir(filepath.Join(wd, "runs"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(wd)
	_, err := c.Resolve(context.Background(), "runs/mle")
	if err == nil || !strings.Contains(err.Error(), "no such directory (runs/ exists here)") {
		t.Errorf("mistyped path: %v", err)
	}
	// A hub id whose owner is not a local directory keeps the hub's error alone.
	_, err = c.Resolve(context.Background(), "org/missing")
	if err == nil || strings.Contains(err.Error(), "no such directory") {
		t.Errorf("missing repo: %v", err)
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
	c := &hub.Client{CacheDir: cache, Offline: true}
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
		r, v, err := hub.ParseID(in)
		if err != nil || r != want[0] || v != want[1] {
			t.Errorf("hub.ParseID(%q) = %q %q %v", in, r, v, err)
		}
	}
	for _, in := range []string{"", "a/b/c", "a--b", "../x", "org/m@", "org/m@../../x", "-x", "a b", "org/.."} {
		if _, _, err := hub.ParseID(in); err == nil {
			t.Errorf("hub.ParseID(%q) accepted", in)
		}
	}
}

func TestFromEnv(t *testing.T) {
	home := t.TempDir()
	t.Setenv(hub.EnvHome, home)
	t.Setenv(hub.EnvCache, "")
	t.Setenv(hub.EnvEndpoint, "http://example.invalid/")
	t.Setenv(hub.EnvToken, "")
	t.Setenv(hub.EnvOffline, "1")
	os.WriteFile(filepath.Join(home, "token"), []byte("hf_file\n"), 0o600)
	c := hub.FromEnv()
	if c.CacheDir != filepath.Join(home, "hub") || c.Endpoint != "http://example.invalid" || !c.Offline || c.Token != "hf_file" {
		t.Errorf("%+v", c)
	}
	t.Setenv(hub.EnvCache, "/x/cache")
	t.Setenv(hub.EnvToken, "hf_env")
	t.Setenv(hub.EnvOffline, "0")
	t.Setenv("TRANSFORMERS_OFFLINE", "")
	c = hub.FromEnv()
	if c.CacheDir != "/x/cache" || c.Token != "hf_env" || c.Offline {
		t.Errorf("%+v", c)
	}
}

// TestConcurrentDownloads runs several resolves of one repository into one cache at once:
// the blob lock lets exactly one of them transfer each file.
func TestConcurrentDownloads(t *testing.T) {
	h := hubtest.New(t)
	files := tinyRepo()
	h.AddRepo("org/tiny", false, files)
	cache := t.TempDir()
	errs := make(chan error, 4)
	dirs := make(chan string, 4)
	for i := 0; i < 4; i++ {
		go func() {
			c, _ := h.Client(cache)
			d, err := c.Resolve(context.Background(), "org/tiny")
			errs <- err
			dirs <- d
		}()
	}
	for i := 0; i < 4; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		if d := <-dirs; !bytes.Equal(readAll(t, filepath.Join(d, "model.safetensors")), files["model.safetensors"]) {
			t.Fatal("content differs")
		}
	}
	n := 0
	for _, r := range h.Requests() {
		if strings.HasPrefix(r, "GET /blob/") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d transfers of the weights, want 1", n)
	}
	if _, err := os.Stat(filepath.Join(cache, ".locks", "models--org--tiny")); err != nil {
		t.Errorf("no lock directory: %v", err)
	}
}
