// Package ensemble interpolates the weights of two checkpoints of one architecture (WiSE-FT
// style, as in the paper's ensembling of an MLE and a CPO model):
//
//	theta(a) = a*theta_MLE + (1-a)*theta_CPO
//
// for one or several values of a at once, streaming tensor by tensor: each tensor of both
// inputs is read once and mixed into every output, so memory stays near the size of the
// largest tensor (two inputs and one mixed buffer) whatever the model size.
//
// Each element is computed in float64 as a*x + (1-a)*y and rounded once to float32 (so a = 0.5
// gives the correctly rounded average), except that a = 1 and a = 0 copy the inputs
// bit-exactly (no -0 + 0 or 0*Inf surprises). Outputs are Hugging Face checkpoint directories
// (config.json, model.safetensors, the tokenizer files), each written in a temporary sibling
// directory and renamed into place when complete.
package ensemble

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/cpo-toolchain/cpo/pkg/checkpoint"
	"github.com/cpo-toolchain/cpo/pkg/model"
	"github.com/cpo-toolchain/cpo/pkg/safetensors"
)

// Output is one interpolation to write: weight Alpha on the MLE checkpoint, into Dir.
type Output struct {
	Alpha float64
	Dir   string
}

// Options control Interpolate.
type Options struct {
	// DType is the stored type of the outputs: safetensors.F32 or safetensors.BF16; empty
	// means the inputs' dtype when both are entirely F32 or entirely BF16, else F32.
	DType safetensors.DType
	// Progress, when not nil, is called after each tensor with the elements done and the total.
	Progress func(done, total int64)
	// Context, when not nil, stops the run between tensors once it is done (Interpolate then
	// returns its error and leaves no output or temporary directory behind).
	Context context.Context
}

// OutputDir expands a directory pattern for alpha: every "{alpha}" becomes the shortest
// decimal form of alpha ("0", "0.1", "0.7").
func OutputDir(pattern string, alpha float64) string {
	return strings.ReplaceAll(pattern, "{alpha}", strconv.FormatFloat(alpha, 'g', -1, 64))
}

// tensor is one stored tensor of an input under its canonical name.
type tensor struct {
	canon, name string // canonical (output) name, stored name
	shape       []int
	dtype       safetensors.DType
}

// canonical maps a stored name to the Hugging Face LM-head model's name (GPT-2 and Llama hub
// checkpoints of the base model omit "transformer." / "model."), and reports names that are
// not parameters (causal-mask buffers, rotary frequencies, a tied head) as skipped.
func canonical(cfg model.Config, name string) (string, bool) {
	if strings.HasSuffix(name, ".attn.bias") || strings.HasSuffix(name, ".attn.masked_bias") ||
		strings.HasSuffix(name, ".rotary_emb.inv_freq") || (name == "lm_head.weight" && cfg.TieEmbeddings) {
		return "", false
	}
	if name == "lm_head.weight" {
		return name, true
	}
	prefix := "transformer."
	if cfg.Arch == model.ArchLlama {
		prefix = "model."
	}
	if !strings.HasPrefix(name, prefix) {
		name = prefix + name
	}
	return name, true
}

// input is an opened checkpoint directory.
type input struct {
	dir     string
	cfg     model.Config
	set     *safetensors.Set
	tensors map[string]tensor // by canonical name
	order   []string          // canonical names in stored order
}

func openInput(dir string) (*input, error) {
	cfg, err := checkpoint.ReadConfig(dir)
	if err != nil {
		return nil, err
	}
	set, err := safetensors.OpenDir(dir)
	if err != nil {
		return nil, err
	}
	in := &input{dir: dir, cfg: cfg, set: set, tensors: map[string]tensor{}}
	for _, name := range set.Names() {
		canon, ok := canonical(cfg, name)
		if !ok {
			continue
		}
		info, _ := set.Info(name)
		if !info.DType.Float() {
			set.Close()
			return nil, fmt.Errorf("%s: tensor %q has dtype %s, not a float type", dir, name, info.DType)
		}
		if prev, dup := in.tensors[canon]; dup {
			set.Close()
			return nil, fmt.Errorf("%s: tensor %q stored twice (as %q and %q)", dir, canon, prev.name, name)
		}
		in.tensors[canon] = tensor{canon: canon, name: name, shape: info.Shape, dtype: info.DType}
		in.order = append(in.order, canon)
	}
	if len(in.order) == 0 {
		set.Close()
		return nil, fmt.Errorf("%s: no parameter tensors", dir)
	}
	return in, nil
}

// Interpolate writes theta(a) = a*theta_MLE + (1-a)*theta_CPO for every output. The two
// checkpoints must have the same architecture (config.json equal up to torch_dtype), the same
// tensors and the same shapes; tokenizer files present in both must be identical. config.json
// and the tokenizer files are copied from the MLE checkpoint (torch_dtype set to the stored
// type). An existing output directory is replaced only if it holds a config.json or is empty,
// and never when it is one of the inputs.
func Interpolate(mleDir, cpoDir string, outs []Output, opt Options) (err error) {
	if len(outs) == 0 {
		return errors.New("ensemble: no output")
	}
	seenDir := map[string]bool{}
	for _, o := range outs {
		if math.IsNaN(o.Alpha) || math.IsInf(o.Alpha, 0) {
			return fmt.Errorf("ensemble: alpha %v is not finite", o.Alpha)
		}
		d := filepath.Clean(o.Dir)
		if seenDir[d] {
			return fmt.Errorf("ensemble: two outputs go to %s (put {alpha} in the pattern)", d)
		}
		seenDir[d] = true
		for _, in := range []string{mleDir, cpoDir} {
			if sameDir(d, in) {
				return fmt.Errorf("ensemble: output %s is the input checkpoint %s; write the mixture elsewhere", o.Dir, in)
			}
		}
		if err := checkReplaceable(d); err != nil {
			return err
		}
	}
	a, err := openInput(mleDir)
	if err != nil {
		return err
	}
	defer a.set.Close()
	b, err := openInput(cpoDir)
	if err != nil {
		return err
	}
	defer b.set.Close()
	if err := sameArch(a, b); err != nil {
		return err
	}
	dtype := opt.DType
	if dtype == "" {
		dtype = commonDType(a, b)
	}
	if dtype != safetensors.F32 && dtype != safetensors.BF16 {
		return fmt.Errorf("ensemble: cannot store %s (want F32 or BF16)", dtype)
	}
	tok, err := tokenizerFiles(mleDir, cpoDir)
	if err != nil {
		return err
	}
	cfgJSON, err := configJSON(mleDir, dtype)
	if err != nil {
		return err
	}

	// One temporary directory and safetensors stream per output.
	type sink struct {
		out  Output
		tmp  string
		f    *os.File
		w    *bufio.Writer
		done bool
	}
	sinks := make([]*sink, len(outs))
	defer func() {
		for _, s := range sinks {
			if s == nil {
				continue
			}
			if s.f != nil {
				s.f.Close()
			}
			if !s.done {
				os.RemoveAll(s.tmp)
			}
		}
	}()
	hdr, total, err := header(a, dtype)
	if err != nil {
		return err
	}
	for i, o := range outs {
		dir := filepath.Clean(o.Dir)
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return err
		}
		tmp, err := os.MkdirTemp(filepath.Dir(dir), filepath.Base(dir)+".tmp-")
		if err != nil {
			return err
		}
		sinks[i] = &sink{out: Output{Alpha: o.Alpha, Dir: dir}, tmp: tmp}
		if err := os.Chmod(tmp, 0o755); err != nil {
			return err
		}
		f, err := os.Create(filepath.Join(tmp, safetensors.SingleFileName))
		if err != nil {
			return err
		}
		sinks[i].f, sinks[i].w = f, bufio.NewWriterSize(f, 1<<20)
		if _, err := sinks[i].w.Write(hdr); err != nil {
			return err
		}
	}

	var x, y []float32
	mix := make([]float32, 0)
	enc := make([]byte, 0)
	var done int64
	for _, name := range a.order {
		if opt.Context != nil {
			if err := opt.Context.Err(); err != nil {
				return err
			}
		}
		ta, tb := a.tensors[name], b.tensors[name]
		n := numel(ta.shape)
		x, y = grow(x, n), grow(y, n)
		if err := a.set.ReadFloat32(ta.name, x); err != nil {
			return err
		}
		if err := b.set.ReadFloat32(tb.name, y); err != nil {
			return err
		}
		mix = grow(mix, n)
		for _, s := range sinks {
			src := mix
			switch s.out.Alpha {
			case 1:
				src = x
			case 0:
				src = y
			default:
				al, be := s.out.Alpha, 1-s.out.Alpha
				for i := range mix {
					mix[i] = float32(al*float64(x[i]) + be*float64(y[i]))
				}
			}
			enc = encode(enc, src, dtype)
			if _, err := s.w.Write(enc); err != nil {
				return fmt.Errorf("ensemble: writing %s: %w", s.tmp, err)
			}
		}
		done += int64(n)
		if opt.Progress != nil {
			opt.Progress(done, total)
		}
	}
	for _, s := range sinks {
		if err := s.w.Flush(); err != nil {
			return err
		}
		if err := s.f.Sync(); err != nil {
			return err
		}
		if err := s.f.Close(); err != nil {
			return err
		}
		s.f = nil
		if err := os.WriteFile(filepath.Join(s.tmp, checkpoint.ConfigFileName), cfgJSON, 0o644); err != nil {
			return err
		}
		for _, src := range tok {
			if err := copyFile(filepath.Join(s.tmp, filepath.Base(src)), src); err != nil {
				return err
			}
		}
		if err := safetensors.SyncDir(s.tmp); err != nil {
			return err
		}
	}
	if opt.Context != nil {
		if err := opt.Context.Err(); err != nil {
			return err
		}
	}
	for _, s := range sinks {
		if err := replaceDir(s.tmp, s.out.Dir); err != nil {
			return err
		}
		s.done = true
	}
	return nil
}

// sameArch refuses checkpoints whose configs, tensor sets or shapes differ.
func sameArch(a, b *input) error {
	ca, cb := a.cfg, b.cfg
	ca.TorchDType, cb.TorchDType = "", ""
	if ca != cb {
		return fmt.Errorf("ensemble: %s and %s have different configs:\n  %+v\n  %+v", filepath.Join(a.dir, checkpoint.ConfigFileName),
			filepath.Join(b.dir, checkpoint.ConfigFileName), ca, cb)
	}
	for _, name := range a.order {
		tb, ok := b.tensors[name]
		if !ok {
			return fmt.Errorf("ensemble: tensor %q of %s is missing from %s", name, a.dir, b.dir)
		}
		if ta := a.tensors[name]; !slices.Equal(ta.shape, tb.shape) {
			return fmt.Errorf("ensemble: tensor %q has shape %v in %s and %v in %s", name, ta.shape, a.dir, tb.shape, b.dir)
		}
	}
	for _, name := range b.order {
		if _, ok := a.tensors[name]; !ok {
			return fmt.Errorf("ensemble: tensor %q of %s is missing from %s", name, b.dir, a.dir)
		}
	}
	return nil
}

// commonDType is the stored type of both inputs when it is F32 or BF16 throughout, else F32.
func commonDType(a, b *input) safetensors.DType {
	var dt safetensors.DType
	for _, in := range []*input{a, b} {
		for _, t := range in.tensors {
			if dt == "" {
				dt = t.dtype
			}
			if t.dtype != dt {
				return safetensors.F32
			}
		}
	}
	if dt == safetensors.BF16 {
		return dt
	}
	return safetensors.F32
}

// header is the safetensors header (length prefix included) of the output, tensors in the
// MLE checkpoint's order, and the total element count.
func header(a *input, dtype safetensors.DType) ([]byte, int64, error) {
	var sb strings.Builder
	sb.WriteString(`{"__metadata__":{"format":"pt"}`)
	off, total := int64(0), int64(0)
	for _, name := range a.order {
		t := a.tensors[name]
		nb, _ := json.Marshal(name)
		sb.WriteByte(',')
		sb.Write(nb)
		sb.WriteString(`:{"dtype":"` + string(dtype) + `","shape":[`)
		for j, d := range t.shape {
			if j > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString(strconv.Itoa(d))
		}
		n := int64(numel(t.shape))
		end := off + n*dtype.Size()
		fmt.Fprintf(&sb, `],"data_offsets":[%d,%d]}`, off, end)
		off, total = end, total+n
	}
	sb.WriteByte('}')
	for (8+sb.Len())%8 != 0 { // the data area starts 8-byte aligned
		sb.WriteByte(' ')
	}
	out := make([]byte, 8, 8+sb.Len())
	binary.LittleEndian.PutUint64(out, uint64(sb.Len()))
	return append(out, sb.String()...), total, nil
}

// encode writes src as little-endian dtype into dst (reused).
func encode(dst []byte, src []float32, dtype safetensors.DType) []byte {
	if dtype == safetensors.BF16 {
		dst = slices.Grow(dst[:0], 2*len(src))[:2*len(src)]
		for i, v := range src {
			binary.LittleEndian.PutUint16(dst[2*i:], safetensors.Float32ToBF16(v))
		}
		return dst
	}
	dst = slices.Grow(dst[:0], 4*len(src))[:4*len(src)]
	for i, v := range src {
		binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
	}
	return dst
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

func grow(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

// configJSON returns the MLE checkpoint's config.json, unchanged when its torch_dtype already
// names dtype, else with torch_dtype replaced (every other key kept).
func configJSON(dir string, dtype safetensors.DType) ([]byte, error) {
	p := filepath.Join(dir, checkpoint.ConfigFileName)
	raw, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	want := "float32"
	if dtype == safetensors.BF16 {
		want = "bfloat16"
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if m["torch_dtype"] == want {
		return raw, nil
	}
	m["torch_dtype"] = want
	out, err := json.MarshalIndent(m, "", "  ")
	return append(out, '\n'), err
}

// tokenizerFiles lists the MLE checkpoint's tokenizer files, refusing a file that both
// checkpoints hold with different contents.
func tokenizerFiles(mleDir, cpoDir string) ([]string, error) {
	files := checkpoint.TokenizerFilesIn(mleDir)
	for _, f := range files {
		other := filepath.Join(cpoDir, filepath.Base(f))
		ob, err := os.ReadFile(other)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		mb, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(mb, ob) {
			return nil, fmt.Errorf("ensemble: %s and %s differ: the checkpoints use different tokenizers", f, other)
		}
	}
	return files, nil
}

func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// sameDir reports whether two paths name one directory (the same path, or the same file
// through a link).
func sameDir(a, b string) bool {
	aa, err1 := filepath.Abs(a)
	bb, err2 := filepath.Abs(b)
	if err1 == nil && err2 == nil && aa == bb {
		return true
	}
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

// checkReplaceable refuses to replace something that is not an old checkpoint.
func checkReplaceable(dir string) error {
	st, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("ensemble: %s exists and is not a directory", dir)
	}
	if _, err := os.Stat(filepath.Join(dir, checkpoint.ConfigFileName)); err == nil {
		return nil
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	if len(ents) > 0 {
		return fmt.Errorf("ensemble: %s exists, is not empty and holds no %s; refusing to replace it", dir, checkpoint.ConfigFileName)
	}
	return nil
}

// replaceDir renames tmp to dir; an existing dir is moved aside first and removed after.
func replaceDir(tmp, dir string) error {
	parent := filepath.Dir(dir)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := os.Rename(tmp, dir); err != nil {
			return err
		}
		return safetensors.SyncDir(parent)
	}
	old, err := os.MkdirTemp(parent, filepath.Base(dir)+".old-")
	if err != nil {
		return err
	}
	if err := os.Remove(old); err != nil {
		return err
	}
	if err := os.Rename(dir, old); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.Rename(old, dir)
		return err
	}
	if err := safetensors.SyncDir(parent); err != nil {
		return err
	}
	return os.RemoveAll(old)
}
