package checkpoint

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cpo-toolchain/cpo/pkg/hub/hubtest"
	"github.com/cpo-toolchain/cpo/pkg/safetensors"
)

// TestResolveFromFakeHub publishes a sharded checkpoint on a fake hub and loads it by hub id
// through the environment (HF_ENDPOINT, HF_HUB_CACHE), then again offline from the cache.
func TestResolveFromFakeHub(t *testing.T) {
	m := randomModel(t, llamaConfig(false), 8)
	src := filepath.Join(t.TempDir(), "src")
	if err := SaveWith(m, src, Options{DType: safetensors.F32, MaxShardBytes: 20000}); err != nil {
		t.Fatal(err)
	}
	h := hubtest.New(t)
	h.AddDir(t, "org/tiny-llama", src)
	cache := t.TempDir()
	t.Setenv("HF_ENDPOINT", h.Hub.URL)
	t.Setenv("HF_HUB_CACHE", cache)
	t.Setenv("HF_TOKEN", "")
	t.Setenv("HF_HOME", t.TempDir())
	t.Setenv("HF_HUB_OFFLINE", "")
	t.Setenv("TRANSFORMERS_OFFLINE", "")
	got, dir, err := Resolve(context.Background(), "org/tiny-llama@main")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(dir, cache) {
		t.Errorf("dir %s not in the cache", dir)
	}
	sameParams(t, m, got)
	t.Setenv("HF_HUB_OFFLINE", "1")
	n := len(h.Requests())
	if _, _, err := Resolve(context.Background(), "org/tiny-llama"); err != nil {
		t.Fatal(err)
	}
	if len(h.Requests()) != n {
		t.Error("offline resolve made requests")
	}
}
