package safetensors

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// File names of a Hugging Face checkpoint directory.
const (
	SingleFileName = "model.safetensors"
	IndexFileName  = "model.safetensors.index.json"
)

// Index is the content of model.safetensors.index.json.
type Index struct {
	// Metadata holds "total_size": the sum of the tensors' byte sizes.
	Metadata map[string]any `json:"metadata"`
	// WeightMap maps each tensor name to the shard file (a bare name in the same directory).
	WeightMap map[string]string `json:"weight_map"`
}

// Set is the tensors of a checkpoint directory: one model.safetensors file, or the shards
// listed by model.safetensors.index.json. Tensors are read on demand.
type Set struct {
	files  []*File
	paths  []string
	where  map[string]*File
	names  []string
	closed bool
}

// OpenDir opens the safetensors weights of a checkpoint directory: the index and its shards
// when model.safetensors.index.json exists, else model.safetensors.
func OpenDir(dir string) (*Set, error) {
	idx := filepath.Join(dir, IndexFileName)
	if _, err := os.Stat(idx); err == nil {
		return OpenIndex(idx)
	}
	single := filepath.Join(dir, SingleFileName)
	if _, err := os.Stat(single); err != nil {
		hint := ""
		for _, other := range []string{"pytorch_model.bin", "pytorch_model.bin.index.json", "model.ckpt.index", "flax_model.msgpack"} {
			if _, err := os.Stat(filepath.Join(dir, other)); err == nil {
				hint = fmt.Sprintf("; it has %s: convert it, e.g. in Python AutoModelForCausalLM.from_pretrained(dir).save_pretrained(out, safe_serialization=True)", other)
				break
			}
		}
		return nil, fmt.Errorf("%s: no %s or %s (only safetensors weights are supported)%s", dir, SingleFileName, IndexFileName, hint)
	}
	f, err := Open(single)
	if err != nil {
		return nil, err
	}
	s := &Set{files: []*File{f}, paths: []string{single}, where: map[string]*File{}}
	for _, t := range f.Tensors() {
		s.where[t.Name] = f
		s.names = append(s.names, t.Name)
	}
	return s, nil
}

// ReadIndex parses and checks an index file (shard names must be plain file names).
func ReadIndex(path string) (*Index, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var ix Index
	if err := json.Unmarshal(data, &ix); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(ix.WeightMap) == 0 {
		return nil, fmt.Errorf("%s: empty weight_map", path)
	}
	for name, shard := range ix.WeightMap {
		if shard == "" || shard != filepath.Base(shard) || shard == "." || shard == ".." || strings.ContainsAny(shard, `/\`) {
			return nil, fmt.Errorf("%s: tensor %q: shard name %q is not a plain file name", path, name, shard)
		}
	}
	return &ix, nil
}

// OpenIndex opens a sharded checkpoint from its index file. Every tensor the index lists
// must be in the shard it names; tensors of a shard that the index does not list are ignored.
func OpenIndex(indexPath string) (*Set, error) {
	ix, err := ReadIndex(indexPath)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(indexPath)
	s := &Set{where: map[string]*File{}}
	byShard := map[string]*File{}
	var shards []string
	for _, sh := range ix.WeightMap {
		if _, ok := byShard[sh]; !ok {
			byShard[sh] = nil
			shards = append(shards, sh)
		}
	}
	sort.Strings(shards)
	for _, sh := range shards {
		p := filepath.Join(dir, sh)
		f, err := Open(p)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("%s: shard: %w", indexPath, err)
		}
		byShard[sh] = f
		s.files = append(s.files, f)
		s.paths = append(s.paths, p)
	}
	for _, sh := range shards {
		f := byShard[sh]
		for _, t := range f.Tensors() {
			if ix.WeightMap[t.Name] == sh {
				s.where[t.Name] = f
				s.names = append(s.names, t.Name)
			}
		}
	}
	for name, sh := range ix.WeightMap {
		if s.where[name] == nil {
			s.Close()
			return nil, fmt.Errorf("%s: tensor %q is listed in shard %s but not found there", indexPath, name, sh)
		}
	}
	return s, nil
}

// Close closes every file of the set.
func (s *Set) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	var first error
	for _, f := range s.files {
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Names returns every tensor name, shard by shard in data order.
func (s *Set) Names() []string { return s.names }

// Paths returns the safetensors files of the set.
func (s *Set) Paths() []string { return s.paths }

// Info describes the named tensor.
func (s *Set) Info(name string) (TensorInfo, bool) {
	f := s.where[name]
	if f == nil {
		return TensorInfo{}, false
	}
	return f.Info(name)
}

// Metadata returns the __metadata__ of the first file (nil when absent).
func (s *Set) Metadata() map[string]string {
	if len(s.files) == 0 {
		return nil
	}
	return s.files[0].Metadata()
}

// ReadFloat32 reads the named tensor into dst (see File.ReadFloat32).
func (s *Set) ReadFloat32(name string, dst []float32) error {
	f := s.where[name]
	if f == nil {
		return fmt.Errorf("no tensor %q in %s", name, strings.Join(s.paths, ", "))
	}
	return f.ReadFloat32(name, dst)
}

// Float32 reads the named tensor as a new slice (see File.Float32).
func (s *Set) Float32(name string) ([]float32, error) {
	f := s.where[name]
	if f == nil {
		return nil, fmt.Errorf("no tensor %q in %s", name, strings.Join(s.paths, ", "))
	}
	return f.Float32(name)
}

// ShardName returns the Hugging Face name of shard i (1-based) of n:
// model-00001-of-00003.safetensors.
func ShardName(i, n int) string { return fmt.Sprintf("model-%05d-of-%05d.safetensors", i, n) }

// WriteDir writes tensors into dir as model.safetensors, or, when maxShardBytes > 0 and the
// tensor data exceeds it, as shards of at most maxShardBytes of tensor data each (a larger
// tensor gets a shard of its own) plus model.safetensors.index.json. Each file is written
// atomically; a stale file of the other layout is removed. It returns the files written.
func WriteDir(dir string, tensors []Tensor, dtype DType, maxShardBytes int64, metadata map[string]string) ([]string, error) {
	if dtype != F32 && dtype != BF16 {
		return nil, fmt.Errorf("safetensors: cannot write dtype %q (supported: F32, BF16)", dtype)
	}
	es := dtype.Size()
	var total int64
	for _, t := range tensors {
		total += int64(t.NumElements()) * es
	}
	if maxShardBytes <= 0 || total <= maxShardBytes {
		p := filepath.Join(dir, SingleFileName)
		if err := WriteFile(p, tensors, dtype, metadata); err != nil {
			return nil, err
		}
		if err := os.Remove(filepath.Join(dir, IndexFileName)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		return []string{p}, nil
	}
	var groups [][]Tensor
	var cur []Tensor
	var curBytes int64
	for _, t := range tensors {
		b := int64(t.NumElements()) * es
		if len(cur) > 0 && curBytes+b > maxShardBytes {
			groups = append(groups, cur)
			cur, curBytes = nil, 0
		}
		cur = append(cur, t)
		curBytes += b
	}
	if len(cur) > 0 {
		groups = append(groups, cur)
	}
	ix := Index{Metadata: map[string]any{"total_size": total}, WeightMap: map[string]string{}}
	var written []string
	for i, g := range groups {
		name := ShardName(i+1, len(groups))
		p := filepath.Join(dir, name)
		if err := WriteFile(p, g, dtype, metadata); err != nil {
			return nil, err
		}
		written = append(written, p)
		for _, t := range g {
			ix.WeightMap[t.Name] = name
		}
	}
	ip := filepath.Join(dir, IndexFileName)
	err := AtomicWrite(ip, func(w io.Writer) error {
		b, err := json.MarshalIndent(ix, "", "  ")
		if err != nil {
			return err
		}
		_, err = w.Write(append(b, '\n'))
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := os.Remove(filepath.Join(dir, SingleFileName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	return append(written, ip), nil
}
