package cliutil

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestCheckOutput(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.parquet")
	os.WriteFile(in, []byte("x"), 0o644)
	link := filepath.Join(dir, "link.parquet")
	os.Symlink(in, link)
	var ue UsageError
	for _, out := range []string{in, "./" + in[1:], link, dir} {
		if out == "./"+in[1:] {
			continue
		}
		if err := CheckOutput(out, []string{"-", in}); !errors.As(err, &ue) {
			t.Errorf("out %s over input %s: %v, want a usage error", out, in, err)
		}
	}
	for _, out := range []string{"", "-", filepath.Join(dir, "other.parquet"), filepath.Join(dir, "sub")} {
		if err := CheckOutput(out, []string{in}); err != nil {
			t.Errorf("out %s: %v", out, err)
		}
	}
	p := filepath.Join(dir, "t.md")
	if err := WriteFileAtomic(p, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "hi" {
		t.Fatal("content")
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v", st.Mode().Perm())
	}
}
