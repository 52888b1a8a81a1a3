package cuda

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/cpo-toolchain/cpo/kernels"
)

// Manifest is kernels/manifest.txt: what the committed fatbins were built from.
type Manifest struct {
	// NVCC is the version line of the compiler ("Cuda compilation tools, release 11.8, ...").
	NVCC string
	// Sources maps a source file name (attention.cu, common.cuh) to its sha256 (hex).
	Sources map[string]string
	// Outputs maps an output path relative to kernels/ (build/attention.fatbin) to its sha256.
	Outputs map[string]string
}

// ParseManifest reads a manifest: '#' comments, then lines "nvcc <version line>",
// "source <sha256> <file>" and "output <sha256> <file>".
func ParseManifest(text string) (Manifest, error) {
	m := Manifest{Sources: map[string]string{}, Outputs: map[string]string{}}
	sc := bufio.NewScanner(strings.NewReader(text))
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		kind, rest, _ := strings.Cut(s, " ")
		switch kind {
		case "nvcc":
			m.NVCC = rest
		case "source", "output":
			f := strings.Fields(rest)
			if len(f) != 2 || len(f[0]) != 64 {
				return m, fmt.Errorf("kernels/manifest.txt line %d: want %q <sha256> <file>, got %q", line, kind, s)
			}
			if kind == "source" {
				m.Sources[f[1]] = f[0]
			} else {
				m.Outputs[f[1]] = f[0]
			}
		default:
			return m, fmt.Errorf("kernels/manifest.txt line %d: unknown entry %q", line, kind)
		}
	}
	if m.NVCC == "" {
		return m, fmt.Errorf("kernels/manifest.txt: no nvcc line")
	}
	return m, nil
}

// EmbeddedManifest is the manifest compiled into the binary with the fatbins.
func EmbeddedManifest() (Manifest, error) {
	b, err := fs.ReadFile(kernels.FS, "manifest.txt")
	if err != nil {
		return Manifest{}, err
	}
	return ParseManifest(string(b))
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// CheckSources compares the kernel sources in dir (the kernels/ directory of a checkout)
// and the embedded outputs with the embedded manifest, and names every file that differs,
// is missing or is not listed: a source edited without rebuilding (bash kernels/build.sh)
// fails here.
func CheckSources(dir string) error {
	m, err := EmbeddedManifest()
	if err != nil {
		return err
	}
	var bad []string
	files, err := filepath.Glob(filepath.Join(dir, "*.cu"))
	if err != nil {
		return err
	}
	hdrs, _ := filepath.Glob(filepath.Join(dir, "*.cuh"))
	seen := map[string]bool{}
	for _, f := range append(files, hdrs...) {
		name := filepath.Base(f)
		seen[name] = true
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		want, ok := m.Sources[name]
		switch {
		case !ok:
			bad = append(bad, name+" is not in the manifest")
		case want != sha256Hex(b):
			bad = append(bad, name+" changed since the kernels were built")
		}
	}
	for name := range m.Sources {
		if !seen[name] {
			bad = append(bad, name+" is in the manifest but not in "+dir)
		}
	}
	for out, want := range m.Outputs {
		b, err := fs.ReadFile(kernels.FS, out)
		if err != nil {
			bad = append(bad, out+" is missing")
		} else if sha256Hex(b) != want {
			bad = append(bad, out+" differs from the manifest")
		}
	}
	for fam := range Families {
		if _, ok := m.Outputs["build/"+fam+".fatbin"]; !ok {
			bad = append(bad, "build/"+fam+".fatbin is not in the manifest")
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("kernels out of date (run make cuda): %s", strings.Join(bad, "; "))
	}
	return nil
}
