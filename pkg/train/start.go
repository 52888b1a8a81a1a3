package train

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"

	"github.com/cpo-toolchain/cpo/pkg/checkpoint"
	"github.com/cpo-toolchain/cpo/pkg/model"
)

// LoadStart loads the starting model of a run from arg: a checkpoint directory, a built-in
// preset name (checkpoint.PresetNames: tiny, llama-tiny, gpt2-small) initialised at random
// from seed (GPT-2 style), or a Hugging Face hub id (pkg/hub). It returns the model and the
// directory it came from ("" for a preset).
func LoadStart(ctx context.Context, arg string, seed uint64) (*model.Model, string, error) {
	if st, err := os.Stat(arg); err == nil && st.IsDir() {
		m, err := checkpoint.Load(arg)
		return m, arg, err
	}
	if cfg, err := checkpoint.Preset(arg); err == nil {
		m, err := checkpoint.NewRandom(cfg, seed)
		return m, "", err
	}
	return checkpoint.Resolve(ctx, arg)
}

// TrimMetrics drops from a metrics JSONL file the lines of steps after step (those written
// after the checkpoint a run resumes from), so that the file reads as one uninterrupted run.
// A missing file is not an error.
func TrimMetrics(path string, step int) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		var l struct {
			Step *int `json:"step"`
		}
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Step != nil && *l.Step > step {
			continue
		}
		out.Write(sc.Bytes())
		out.WriteByte('\n')
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".trim")
	if err := os.WriteFile(tmp, out.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
