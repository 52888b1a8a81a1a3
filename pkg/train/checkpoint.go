package train

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/cpo-toolchain/cpo/pkg/checkpoint"
	"github.com/cpo-toolchain/cpo/pkg/safetensors"
)

// Checkpoint layout. A checkpoint is a Hugging Face model directory (config.json,
// model.safetensors, tokenizer files: pkg/checkpoint) with the trainer's files beside:
//
//	trainer_state.json   State: step, epoch and position in the data, seed, objective, the data
//	                     and reference fingerprints
//	optimizer.bin        the AdamW moments and step (optim.AdamW.Save; every Engine writes and
//	                     reads this format, so a checkpoint resumes on any device)
//
// Checkpoints are CheckpointDir/checkpoint-<step>; the final model is Out (with
// trainer_state.json but no optimizer state). Each directory appears atomically: it is written
// as a hidden sibling, synced and renamed into place.

// CheckpointDir returns the directory of the run's checkpoints.
func (t *Trainer) CheckpointDir() string {
	if t.Cfg.CheckpointDir != "" {
		return t.Cfg.CheckpointDir
	}
	return strings.TrimRight(t.Cfg.Out, "/") + "-checkpoints"
}

// SaveCheckpoint writes checkpoint-<step> with the optimizer state and prunes old ones beyond
// Keep. It returns the directory.
func (t *Trainer) SaveCheckpoint() (string, error) {
	root := t.CheckpointDir()
	dir := filepath.Join(root, "checkpoint-"+strconv.Itoa(t.step))
	if err := t.saveDir(dir, true); err != nil {
		return "", err
	}
	if t.Cfg.Keep > 0 {
		steps, err := listCheckpoints(root)
		if err != nil {
			return dir, err
		}
		for len(steps) > t.Cfg.Keep {
			if err := os.RemoveAll(filepath.Join(root, "checkpoint-"+strconv.Itoa(steps[0]))); err != nil {
				return dir, err
			}
			steps = steps[1:]
		}
	}
	return dir, nil
}

// SaveFinal writes the trained model to Out with trainer_state.json.
func (t *Trainer) SaveFinal() error { return t.saveDir(t.Cfg.Out, false) }

// saveDir writes the model and the trainer files into a hidden sibling of dir and renames it
// into place, replacing an existing checkpoint directory.
func (t *Trainer) saveDir(dir string, withOptimizer bool) (err error) {
	dir = filepath.Clean(dir)
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	if err := checkReplaceable(dir); err != nil {
		return err
	}
	var rb [6]byte
	rand.Read(rb[:])
	tmp := filepath.Join(parent, fmt.Sprintf(".%s.partial-%x", filepath.Base(dir), rb))
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	if err := t.Engine.Sync(); err != nil {
		return fmt.Errorf("copying the weights from %s: %w", t.Engine.Device(), err)
	}
	if err := checkpoint.SaveWith(t.Policy, tmp, checkpoint.Options{TokenizerFiles: t.Cfg.TokenizerFiles}); err != nil {
		return err
	}
	st, err := json.MarshalIndent(t.state(), "", " ")
	if err != nil {
		return err
	}
	if err := safetensors.AtomicWrite(filepath.Join(tmp, StateFileName), func(w io.Writer) error {
		_, err := w.Write(append(st, '\n'))
		return err
	}); err != nil {
		return err
	}
	if withOptimizer {
		if err := safetensors.AtomicWrite(filepath.Join(tmp, OptimizerFileName), t.Engine.SaveOptimizer); err != nil {
			return err
		}
	}
	if err := safetensors.SyncDir(tmp); err != nil {
		return err
	}
	if _, err := os.Stat(dir); err == nil {
		old := fmt.Sprintf("%s.old-%x", filepath.Join(parent, "."+filepath.Base(dir)), rb)
		if err := os.Rename(dir, old); err != nil {
			return err
		}
		if err := os.Rename(tmp, dir); err != nil {
			os.Rename(old, dir)
			return err
		}
		os.RemoveAll(old)
	} else if err := os.Rename(tmp, dir); err != nil {
		return err
	}
	return safetensors.SyncDir(parent)
}

// checkReplaceable reports why a model directory could not be written at dir: a file is there,
// or a non-empty directory that is not a checkpoint (which saving would replace).
func checkReplaceable(dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return nil
	}
	if !st.IsDir() {
		return fmt.Errorf("%s exists and is not a directory", dir)
	}
	if _, err := os.Stat(filepath.Join(dir, checkpoint.ConfigFileName)); err != nil {
		if ents, _ := os.ReadDir(dir); len(ents) > 0 {
			return fmt.Errorf("%s exists, is not empty and is not a checkpoint; refusing to replace it", dir)
		}
	}
	return nil
}

// probeWritable creates (if need be) the directory dir and a file in it, and removes the file.
func probeWritable(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".cpo-train-probe-*")
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}

// CheckOutputs reports, before any training, an output the run could not write at its end or
// at its checkpoints: Out that is a file or a non-empty directory other than a checkpoint, a
// checkpoint directory that is a file, or a place where no file can be created. It creates the
// parent directories of Out and the checkpoint directory (saving would create them anyway).
func (t *Trainer) CheckOutputs() error {
	if t.Cfg.Out == "" {
		return nil
	}
	out := filepath.Clean(t.Cfg.Out)
	if err := checkReplaceable(out); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	if err := probeWritable(filepath.Dir(out)); err != nil {
		return fmt.Errorf("--out %s cannot be written: %w", out, err)
	}
	root := filepath.Clean(t.CheckpointDir())
	probe := filepath.Dir(root) // where root will be made
	if st, err := os.Stat(root); err == nil {
		if !st.IsDir() {
			return fmt.Errorf("checkpoint directory %s exists and is not a directory", root)
		}
		probe = root
	}
	if err := probeWritable(probe); err != nil {
		return fmt.Errorf("checkpoint directory %s cannot be written: %w", root, err)
	}
	return nil
}

// listCheckpoints returns the steps of the complete checkpoints under root, ascending.
func listCheckpoints(root string) ([]int, error) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	var steps []int
	for _, e := range ents {
		s, ok := strings.CutPrefix(e.Name(), "checkpoint-")
		if !ok || !e.IsDir() {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(root, e.Name(), StateFileName)); err == nil {
			steps = append(steps, n)
		}
	}
	sort.Ints(steps)
	return steps, nil
}

// FindCheckpoint resolves a --resume argument: a checkpoint directory (it holds
// trainer_state.json), or a directory of checkpoint-<step> directories (the latest complete one).
func FindCheckpoint(path string) (string, error) {
	if _, err := os.Stat(filepath.Join(path, StateFileName)); err == nil {
		return path, nil
	}
	steps, err := listCheckpoints(path)
	if err != nil {
		return "", fmt.Errorf("resume: %w", err)
	}
	if len(steps) == 0 {
		return "", fmt.Errorf("resume: %s holds neither %s nor checkpoint-<step> directories", path, StateFileName)
	}
	return filepath.Join(path, "checkpoint-"+strconv.Itoa(steps[len(steps)-1])), nil
}

// ReadState reads dir/trainer_state.json.
func ReadState(dir string) (State, error) {
	var st State
	b, err := os.ReadFile(filepath.Join(dir, StateFileName))
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("%s: %w", filepath.Join(dir, StateFileName), err)
	}
	if st.Version != 1 {
		return st, fmt.Errorf("%s: version %d (this build reads 1)", filepath.Join(dir, StateFileName), st.Version)
	}
	return st, nil
}

// Resume loads a checkpoint (FindCheckpoint(path)) into the trainer: the policy's weights, the
// optimizer state and the position in the data. It refuses a checkpoint of another architecture,
// of other data, of another starting (reference) model, objective, batch size or seed, so that
// the resumed run continues the original one bit for bit.
func (t *Trainer) Resume(path string) (string, error) {
	dir, err := FindCheckpoint(path)
	if err != nil {
		return "", err
	}
	st, err := ReadState(dir)
	if err != nil {
		return "", err
	}
	cfg, err := checkpoint.ReadConfig(dir)
	if err != nil {
		return "", err
	}
	want := t.Policy.Config
	cfg.TorchDType, want.TorchDType = "", ""
	if cfg != want {
		return "", fmt.Errorf("resume: %s is a %s model (L=%d C=%d NH=%d V=%d) but the starting model is a %s (L=%d C=%d NH=%d V=%d); resume needs the run's own starting model as --model",
			dir, cfg.Arch, cfg.NLayer, cfg.DModel, cfg.NHead, cfg.VocabSize, want.Arch, want.NLayer, want.DModel, want.NHead, want.VocabSize)
	}
	c := t.Cfg
	var bad []string
	if st.Data != t.DataFP || st.Rows != len(t.Items) {
		bad = append(bad, fmt.Sprintf("the data differs (%d rows, fingerprint %s; the checkpoint's run had %d rows, %s)", len(t.Items), short(t.DataFP), st.Rows, short(st.Data)))
	}
	if st.RefModel != t.RefFP {
		bad = append(bad, fmt.Sprintf("the starting (reference) model is %s, the run's was %s", short(t.RefFP), short(st.RefModel)))
	}
	if st.Objective != c.Objective.Name || st.Beta != c.Objective.Beta || st.Alpha != c.Objective.Alpha || st.MLEPrompt != c.Objective.MLEPrompt {
		bad = append(bad, fmt.Sprintf("the objective is %s beta %v alpha %v, the run's was %s beta %v alpha %v", c.Objective.Name, c.Objective.Beta, c.Objective.Alpha, st.Objective, st.Beta, st.Alpha))
	}
	if st.Batch != c.Batch || st.Seed != c.Seed {
		bad = append(bad, fmt.Sprintf("batch %d seed %d, the run's were %d and %d", c.Batch, c.Seed, st.Batch, st.Seed))
	}
	if len(bad) > 0 {
		return "", fmt.Errorf("resume from %s: %s", dir, strings.Join(bad, "; "))
	}
	if st.Position < 0 || st.Position > len(t.Items) || st.Step < 0 {
		return "", fmt.Errorf("resume: %s: bad position", dir)
	}
	m, err := checkpoint.Load(dir)
	if err != nil {
		return "", err
	}
	f, err := os.Open(filepath.Join(dir, OptimizerFileName))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("resume: %s has no %s (a final model, not a checkpoint)", dir, OptimizerFileName)
		}
		return "", err
	}
	defer f.Close()
	if err := t.Engine.LoadOptimizer(f); err != nil {
		return "", fmt.Errorf("%s: %w", filepath.Join(dir, OptimizerFileName), err)
	}
	copy(t.Policy.ParamArena(), m.ParamArena())
	if err := t.Engine.Upload(); err != nil {
		return "", fmt.Errorf("resume: sending the weights of %s to %s: %w", dir, t.Engine.Device(), err)
	}
	t.step, t.epoch, t.pos = st.Step, st.Epoch, st.Position
	t.perm = epochPerm(c.Seed, t.epoch, len(t.Items))
	return dir, nil
}
