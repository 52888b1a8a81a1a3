// Package checkpoint reads and writes models as Hugging Face checkpoint directories:
//
//	config.json                        model.Config.HFConfigJSON (model_type, architectures,
//	                                   torch_dtype = the stored dtype)
//	model.safetensors                  every parameter under its Hugging Face name and shape,
//	                                   metadata {"format": "pt"} as transformers requires
//	  or model.safetensors.index.json  plus model-0000i-of-0000n.safetensors shards
//	tokenizer.json, ...                tokenizer files copied beside, unchanged
//
// so a directory written here loads in transformers (GPT2LMHeadModel, LlamaForCausalLM) and
// one written by transformers, or downloaded from the hub, loads here. A tied lm head is not
// stored (transformers drops it too) and is ignored when present. Directories holding only
// PyTorch weights (pytorch_model.bin, or pytorch_model.bin.index.json and its shards) load too:
// see torchbin.go; the pickle is interpreted, never executed.
package checkpoint

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/cpo-toolchain/cpo/pkg/hub"
	"github.com/cpo-toolchain/cpo/pkg/model"
	"github.com/cpo-toolchain/cpo/pkg/safetensors"
)

// ConfigFileName is the Hugging Face configuration file of a checkpoint.
const ConfigFileName = "config.json"

// ReadConfig parses dir/config.json.
func ReadConfig(dir string) (model.Config, error) {
	p := filepath.Join(dir, ConfigFileName)
	b, err := os.ReadFile(p)
	if err != nil {
		return model.Config{}, err
	}
	cfg, err := model.ParseHFConfig(b)
	if err != nil {
		return model.Config{}, fmt.Errorf("%s: %w", p, err)
	}
	return cfg, nil
}

// ignoredTensor reports names that transformers stores but that are not parameters: GPT-2's
// causal-mask buffers and Llama's rotary inverse frequencies.
func ignoredTensor(name string) bool {
	return strings.HasSuffix(name, ".attn.bias") || strings.HasSuffix(name, ".attn.masked_bias") ||
		strings.HasSuffix(name, ".rotary_emb.inv_freq")
}

// paramName maps a stored tensor name to the model's parameter name. GPT-2 checkpoints on
// the hub (those of GPT2Model) omit the "transformer." prefix.
func paramName(m *model.Model, name string) string {
	if m.Param(name) != nil {
		return name
	}
	if m.Config.Arch == model.ArchGPT2 && !strings.HasPrefix(name, "transformer.") && m.Param("transformer."+name) != nil {
		return "transformer." + name
	}
	if m.Config.Arch == model.ArchLlama && !strings.HasPrefix(name, "model.") && m.Param("model."+name) != nil {
		return "model." + name
	}
	return ""
}

// Load reads the checkpoint in dir: config.json, then every parameter from model.safetensors
// or the sharded index (else from PyTorch's pytorch_model.bin or its sharded index, read
// without executing the pickle), converting F32/F16/BF16/F64 to float32 and checking each shape against
// the config. A tensor missing, of the wrong shape or dtype, or not belonging to the model is
// an error naming it and the file.
func Load(dir string) (*model.Model, error) {
	cfg, err := ReadConfig(dir)
	if err != nil {
		return nil, err
	}
	set, err := openWeights(dir)
	if err != nil {
		return nil, err
	}
	defer set.Close()
	m, err := model.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	where := strings.Join(set.Paths(), ", ")
	filled := map[string]string{}
	for _, name := range set.Names() {
		pn := paramName(m, name)
		if pn == "" {
			if ignoredTensor(name) || (name == "lm_head.weight" && cfg.TieEmbeddings) {
				continue
			}
			return nil, fmt.Errorf("%s: tensor %q is not a parameter of this %s model (config %s)", where, name, cfg.Arch, filepath.Join(dir, ConfigFileName))
		}
		if prev, dup := filled[pn]; dup {
			return nil, fmt.Errorf("%s: parameter %q stored twice (as %q and %q)", where, pn, prev, name)
		}
		p := m.Param(pn)
		info, _ := set.Info(name)
		if !slices.Equal(info.Shape, p.Shape) {
			return nil, fmt.Errorf("%s: tensor %q has shape %v, config.json implies %v", where, name, info.Shape, p.Shape)
		}
		if err := set.ReadFloat32(name, p.Data); err != nil {
			return nil, err
		}
		filled[pn] = name
	}
	var missing []string
	for _, p := range m.Params() {
		if _, ok := filled[p.Name]; !ok {
			missing = append(missing, p.Name)
		}
	}
	if len(missing) > 0 {
		more := ""
		if len(missing) > 5 {
			more = fmt.Sprintf(" and %d more", len(missing)-5)
			missing = missing[:5]
		}
		return nil, fmt.Errorf("%s: missing tensor %s%s", where, strings.Join(missing, ", "), more)
	}
	return m, nil
}

// Resolve finds a model argument (a directory or a hub id, see hub.Resolve) and loads it.
// It returns the model and the directory it came from.
func Resolve(ctx context.Context, arg string) (*model.Model, string, error) {
	dir, err := hub.Resolve(ctx, arg)
	if err != nil {
		return nil, "", err
	}
	m, err := Load(dir)
	return m, dir, err
}

// Info describes a checkpoint directory from its config and safetensors headers, without
// reading the tensors.
type Info struct {
	Dir     string
	Config  model.Config
	Files   []string         // the weight files (safetensors, or PyTorch .bin)
	DTypes  map[string]int64 // stored dtype → number of elements
	Tensors int              // number of stored tensors (buffers included)
	Bytes   int64            // tensor data bytes
}

// DType returns the stored dtype, or the dtypes joined by "+" when they are mixed.
func (in *Info) DType() string {
	var ds []string
	for d := range in.DTypes {
		ds = append(ds, d)
	}
	sort.Strings(ds)
	return strings.Join(ds, "+")
}

// Describe reads the config and the safetensors headers of dir.
func Describe(dir string) (*Info, error) {
	cfg, err := ReadConfig(dir)
	if err != nil {
		return nil, err
	}
	set, err := openWeights(dir)
	if err != nil {
		return nil, err
	}
	defer set.Close()
	in := &Info{Dir: dir, Config: cfg, Files: set.Paths(), DTypes: map[string]int64{}}
	for _, name := range set.Names() {
		t, _ := set.Info(name)
		if ignoredTensor(name) {
			continue
		}
		in.Tensors++
		in.DTypes[string(t.DType)] += t.NumElements()
		in.Bytes += t.End - t.Begin
	}
	return in, nil
}

// Fingerprint identifies a model's architecture and exact parameter values: the hex SHA-256 of
//
//	"cpo-model-fingerprint-v1\n"
//	the config.json bytes of HFConfigJSON with TorchDType cleared (so the storage dtype
//	    label does not matter, only the values)
//	then for every parameter in Params order: its name, "\n", its shape as decimal numbers
//	    joined by ",", "\n", and its float32 values as little-endian bytes.
//
// A checkpoint saved in F32 and loaded again has the same fingerprint; one saved in BF16 has
// the fingerprint of its rounded values.
func Fingerprint(m *model.Model) (string, error) {
	cfg := m.Config
	cfg.TorchDType = ""
	cj, err := cfg.HFConfigJSON()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	io.WriteString(h, "cpo-model-fingerprint-v1\n")
	h.Write(cj)
	buf := make([]byte, 4<<10)
	for _, p := range m.Params() {
		dims := make([]string, len(p.Shape))
		for i, d := range p.Shape {
			dims[i] = strconv.Itoa(d)
		}
		io.WriteString(h, p.Name+"\n"+strings.Join(dims, ",")+"\n")
		for i := 0; i < len(p.Data); i += len(buf) / 4 {
			chunk := p.Data[i:min(i+len(buf)/4, len(p.Data))]
			for j, v := range chunk {
				binary.LittleEndian.PutUint32(buf[4*j:], math.Float32bits(v))
			}
			h.Write(buf[:4*len(chunk)])
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Options control Save.
type Options struct {
	// DType is the stored element type: safetensors.F32 (default) or safetensors.BF16.
	DType safetensors.DType
	// MaxShardBytes splits the weights into shards of at most this many bytes of tensor data
	// plus model.safetensors.index.json (0: a single model.safetensors).
	MaxShardBytes int64
	// TokenizerFiles are copied into the checkpoint under their base names.
	TokenizerFiles []string
}

// Save writes m as a checkpoint directory stored as dtype (F32 or BF16), with the given
// tokenizer files copied beside. See SaveWith.
func Save(m *model.Model, dir string, dtype safetensors.DType, tokenizerFiles ...string) error {
	return SaveWith(m, dir, Options{DType: dtype, TokenizerFiles: tokenizerFiles})
}

// SaveWith writes m as a checkpoint directory. The directory appears atomically: everything is
// written and synced in a sibling dir.tmp-XXXX, which is then renamed to dir. An existing dir
// is replaced only if it looks like a checkpoint (it has a config.json) or is empty, and is
// kept if anything fails.
func SaveWith(m *model.Model, dir string, opt Options) (err error) {
	if opt.DType == "" {
		opt.DType = safetensors.F32
	}
	var torchDType string
	switch opt.DType {
	case safetensors.F32:
		torchDType = "float32"
	case safetensors.BF16:
		torchDType = "bfloat16"
	default:
		return fmt.Errorf("checkpoint: cannot save as %s (supported: F32, BF16)", opt.DType)
	}
	dir = filepath.Clean(dir)
	if err := checkReplaceable(dir); err != nil {
		return err
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, filepath.Base(dir)+".tmp-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	cfg := m.Config
	cfg.TorchDType = torchDType
	cj, err := cfg.HFConfigJSON()
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(tmp, ConfigFileName), cj); err != nil {
		return err
	}
	var tensors []safetensors.Tensor
	for _, p := range m.Params() {
		tensors = append(tensors, safetensors.Tensor{Name: p.Name, Shape: p.Shape, Data: p.Data})
	}
	if _, err := safetensors.WriteDir(tmp, tensors, opt.DType, opt.MaxShardBytes, map[string]string{"format": "pt"}); err != nil {
		return err
	}
	reserved := map[string]bool{ConfigFileName: true, safetensors.SingleFileName: true, safetensors.IndexFileName: true}
	for _, src := range opt.TokenizerFiles {
		base := filepath.Base(src)
		if reserved[base] || strings.HasSuffix(base, ".safetensors") {
			return fmt.Errorf("checkpoint: tokenizer file %s would overwrite the checkpoint's own %s", src, base)
		}
		reserved[base] = true
		if err := copyFile(filepath.Join(tmp, base), src); err != nil {
			return err
		}
	}
	if err := safetensors.SyncDir(tmp); err != nil {
		return err
	}
	return replaceDir(tmp, dir)
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
		return fmt.Errorf("checkpoint: %s exists and is not a directory", dir)
	}
	if _, err := os.Stat(filepath.Join(dir, ConfigFileName)); err == nil {
		return nil
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	if len(ents) > 0 {
		return fmt.Errorf("checkpoint: %s exists, is not empty and holds no %s; refusing to replace it", dir, ConfigFileName)
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
	var rb [6]byte
	rand.Read(rb[:])
	old := fmt.Sprintf("%s.old-%x", dir, rb)
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

func writeFile(path string, b []byte) error {
	return safetensors.AtomicWrite(path, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
}

func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("checkpoint: tokenizer file: %w", err)
	}
	defer in.Close()
	return safetensors.AtomicWrite(dst, func(w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	})
}

// TokenizerFilesIn returns the tokenizer files (hub.TokenizerFiles) present in dir, to be
// copied into a checkpoint derived from it.
func TokenizerFilesIn(dir string) []string {
	var out []string
	for _, n := range hub.TokenizerFiles {
		p := filepath.Join(dir, n)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			out = append(out, p)
		}
	}
	return out
}
