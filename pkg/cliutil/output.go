package cliutil

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// CheckOutput refuses (as a usage error) an output path that is one of the inputs or holds one
// of them (an output directory replaced as a whole), before any work starts: writing it would
// destroy the input. "" and "-" (standard output) always pass.
func CheckOutput(out string, inputs []string) error {
	if out == "" || out == "-" {
		return nil
	}
	ao, err := filepath.Abs(out)
	if err != nil {
		return nil
	}
	so, serr := os.Stat(out)
	for _, in := range inputs {
		if in == "-" || in == "" {
			continue
		}
		ai, err := filepath.Abs(in)
		if err != nil {
			continue
		}
		same := ai == ao
		if rel, err := filepath.Rel(ao, ai); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			same = true // the input is the output or lies inside the output directory
		}
		if si, err := os.Stat(in); !same && err == nil && serr == nil && os.SameFile(si, so) {
			same = true
		}
		if same {
			return Usagef("--out %s would replace the input %s; write elsewhere", out, in)
		}
	}
	return nil
}

// WriteFileAtomic writes data to a temporary file beside path and renames it into place, so
// that path holds either its old contents or all of data, never a part.
func WriteFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
