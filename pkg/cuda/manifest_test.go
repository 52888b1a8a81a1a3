package cuda

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The committed fatbins must be built from the committed sources.
func TestManifestMatchesSources(t *testing.T) {
	if err := CheckSources("../../kernels"); err != nil {
		t.Fatal(err)
	}
	m, err := EmbeddedManifest()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m.NVCC, "release 11.8") {
		t.Errorf("manifest nvcc line %q: the kernels are meant to be built by nvcc 11.8", m.NVCC)
	}
}

// An edited, added or removed source is reported by name.
func TestManifestDetectsChanges(t *testing.T) {
	dir := t.TempDir()
	srcs, _ := filepath.Glob("../../kernels/*.cu*")
	for _, f := range srcs {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := CheckSources(dir); err != nil {
		t.Fatalf("unchanged copy: %v", err)
	}
	f := filepath.Join(dir, "attention.cu")
	b, _ := os.ReadFile(f)
	os.WriteFile(f, append(b, []byte("\n// edited\n")...), 0o644)
	os.WriteFile(filepath.Join(dir, "extra.cu"), []byte("// new\n"), 0o644)
	os.Remove(filepath.Join(dir, "cast.cu"))
	err := CheckSources(dir)
	if err == nil {
		t.Fatal("edited sources passed the manifest check")
	}
	for _, want := range []string{"attention.cu changed", "extra.cu is not in the manifest", "cast.cu is in the manifest but not in"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// Every kernel the backend launches is in its family's fatbin (its name is in the
// image's symbol table), for both storage types.
func TestKernelNamesInFatbins(t *testing.T) {
	for fam := range Families {
		img, err := Fatbin(fam)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range KernelNames(fam) {
			if !bytes.Contains(img, append([]byte(name), 0)) {
				t.Errorf("%s.fatbin has no kernel %s", fam, name)
			}
		}
	}
	if n := KernelNames("norm"); len(n) != 8 || n[0] != "layernorm_fwd_f32" || n[1] != "layernorm_fwd_bf16" {
		t.Errorf("KernelNames(norm) = %v", n)
	}
	if _, err := Fatbin("nope"); err == nil {
		t.Error("Fatbin of an unknown family succeeded")
	}
}

func TestParseManifestErrors(t *testing.T) {
	for _, bad := range []string{
		"source abc x.cu\nnvcc v",
		"nvcc v\nfrobnicate x",
		"source " + strings.Repeat("a", 64) + " x.cu",
	} {
		if _, err := ParseManifest(bad); err == nil {
			t.Errorf("ParseManifest(%q) succeeded", bad)
		}
	}
	m, err := ParseManifest("# c\nnvcc release 11.8\nsource " + strings.Repeat("b", 64) + " a.cu\noutput " + strings.Repeat("c", 64) + " build/a.fatbin\n")
	if err != nil || m.Sources["a.cu"] != strings.Repeat("b", 64) || m.Outputs["build/a.fatbin"] != strings.Repeat("c", 64) || m.NVCC != "release 11.8" {
		t.Errorf("ParseManifest = %+v, %v", m, err)
	}
}

func TestOptionsDefaults(t *testing.T) {
	o, err := Options{}.withDefaults()
	if err != nil || o.Precision != BF16 || o.Beta1 != 0.9 || o.Beta2 != 0.999 || o.Eps != 1e-8 {
		t.Errorf("defaults = %+v, %v", o, err)
	}
	if _, err := (Options{Precision: "fp16"}).withDefaults(); err == nil {
		t.Error("precision fp16 accepted")
	}
	if o.Attention != AttnFlash {
		t.Errorf("default attention %q", o.Attention)
	}
	if _, err := (Options{Attention: "sdpa"}).withDefaults(); err == nil {
		t.Error("attention sdpa accepted")
	}
}
