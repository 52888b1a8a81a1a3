package checkpoint

import (
	"archive/zip"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cpo-toolchain/cpo/pkg/safetensors"
)

// PyTorch weights (pytorch_model.bin, torch.save's zip format of PyTorch >= 1.6) are read
// for the many hub models that have no safetensors. The pickle inside is NOT executed: a
// small interpreter understands the opcodes a state dict uses and only the globals that
// rebuild tensors (torch._utils._rebuild_tensor_v2, collections.OrderedDict, the storage
// types); anything else is an error, so a malicious file cannot run code.

// File names of PyTorch weights in a checkpoint directory.
const (
	TorchFileName      = "pytorch_model.bin"
	TorchIndexFileName = "pytorch_model.bin.index.json"
)

// maxPickle bounds data.pkl (a state dict's pickle is kilobytes to a few megabytes).
const maxPickle = 256 << 20

// tensorSource is what Load needs of a weights format; safetensors.Set implements it.
type tensorSource interface {
	Names() []string
	Info(name string) (safetensors.TensorInfo, bool)
	ReadFloat32(name string, dst []float32) error
	Paths() []string
	Close() error
}

// openWeights opens the safetensors weights of dir, or else its PyTorch weights.
func openWeights(dir string) (tensorSource, error) {
	set, err := safetensors.OpenDir(dir)
	if err == nil {
		return set, nil
	}
	for _, n := range []string{TorchIndexFileName, TorchFileName} {
		if _, serr := os.Stat(filepath.Join(dir, n)); serr == nil {
			return openTorchDir(dir)
		}
	}
	return nil, err
}

// storageRef is a persistent id of the pickle: one storage of the archive.
type storageRef struct {
	dtype safetensors.DType
	key   string
	numel int64
}

// tensorRef is a rebuilt tensor: a strided view of a storage.
type tensorRef struct {
	st     *storageRef
	offset int64
	size   []int
	stride []int64
}

type torchFile struct {
	path   string
	f      *os.File
	zr     *zip.Reader
	prefix string // "archive/" or the archive's own folder
	// entries: storage key → zip entry
	entries map[string]*zip.File
}

type torchSet struct {
	files []*torchFile
	paths []string
	names []string
	where map[string]*torchFile
	refs  map[string]*tensorRef
}

func openTorchDir(dir string) (*torchSet, error) {
	s := &torchSet{where: map[string]*torchFile{}, refs: map[string]*tensorRef{}}
	var shards []string
	var weightMap map[string]string
	idx := filepath.Join(dir, TorchIndexFileName)
	if b, err := os.ReadFile(idx); err == nil {
		var ix safetensors.Index
		if err := json.Unmarshal(b, &ix); err != nil {
			return nil, fmt.Errorf("%s: %w", idx, err)
		}
		weightMap = ix.WeightMap
		seen := map[string]bool{}
		for name, sh := range ix.WeightMap {
			if sh == "" || sh != filepath.Base(sh) || sh == "." || sh == ".." || strings.ContainsAny(sh, `/\`) {
				return nil, fmt.Errorf("%s: tensor %q: shard name %q is not a plain file name", idx, name, sh)
			}
			if !seen[sh] {
				seen[sh] = true
				shards = append(shards, sh)
			}
		}
		sort.Strings(shards)
	} else {
		shards = []string{TorchFileName}
	}
	for _, sh := range shards {
		p := filepath.Join(dir, sh)
		tf, refs, order, err := openTorchFile(p)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.files = append(s.files, tf)
		s.paths = append(s.paths, p)
		for _, name := range order {
			if weightMap != nil && weightMap[name] != sh {
				continue
			}
			if _, dup := s.where[name]; dup {
				s.Close()
				return nil, fmt.Errorf("%s: tensor %q appears in two files", p, name)
			}
			s.where[name] = tf
			s.refs[name] = refs[name]
			s.names = append(s.names, name)
		}
	}
	for name, sh := range weightMap {
		if s.where[name] == nil {
			s.Close()
			return nil, fmt.Errorf("%s: tensor %q is listed in shard %s but not found there", idx, name, sh)
		}
	}
	return s, nil
}

func openTorchFile(path string) (*torchFile, map[string]*tensorRef, []string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, nil, err
	}
	zr, err := zip.NewReader(f, st.Size())
	if err != nil {
		f.Close()
		return nil, nil, nil, fmt.Errorf("%s: not a PyTorch zip archive (the legacy format of PyTorch < 1.6 is not supported): %w", path, err)
	}
	tf := &torchFile{path: path, f: f, zr: zr, entries: map[string]*zip.File{}}
	var pkl *zip.File
	for _, e := range zr.File {
		if strings.HasSuffix(e.Name, "/data.pkl") && strings.Count(e.Name, "/") == 1 {
			pkl = e
			tf.prefix = strings.TrimSuffix(e.Name, "data.pkl")
		}
	}
	if pkl == nil {
		f.Close()
		return nil, nil, nil, fmt.Errorf("%s: no data.pkl in the archive", path)
	}
	for _, e := range zr.File {
		if k, ok := strings.CutPrefix(e.Name, tf.prefix+"data/"); ok {
			tf.entries[k] = e
		}
	}
	if pkl.UncompressedSize64 > maxPickle {
		f.Close()
		return nil, nil, nil, fmt.Errorf("%s: data.pkl of %d bytes is implausibly large", path, pkl.UncompressedSize64)
	}
	rc, err := pkl.Open()
	if err != nil {
		f.Close()
		return nil, nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	data, err := io.ReadAll(io.LimitReader(rc, maxPickle+1))
	rc.Close()
	if err != nil {
		f.Close()
		return nil, nil, nil, fmt.Errorf("%s: data.pkl: %w", path, err)
	}
	obj, err := unpickle(data)
	if err != nil {
		f.Close()
		return nil, nil, nil, fmt.Errorf("%s: data.pkl: %w", path, err)
	}
	d, ok := obj.(*pyDict)
	if !ok {
		f.Close()
		return nil, nil, nil, fmt.Errorf("%s: data.pkl holds %T, not a state dict", path, obj)
	}
	refs := map[string]*tensorRef{}
	var order []string
	for i, k := range d.keys {
		name, ok := k.(string)
		if !ok {
			f.Close()
			return nil, nil, nil, fmt.Errorf("%s: state dict key %v is not a string", path, k)
		}
		t, ok := d.vals[i].(*tensorRef)
		if !ok {
			continue // not a tensor (e.g. a stored int): not a parameter
		}
		if err := tf.checkRef(name, t); err != nil {
			f.Close()
			return nil, nil, nil, err
		}
		refs[name] = t
		order = append(order, name)
	}
	return tf, refs, order, nil
}

// checkRef validates a tensor view against its storage entry before anything is read.
func (tf *torchFile) checkRef(name string, t *tensorRef) error {
	e := tf.entries[t.st.key]
	if e == nil {
		return fmt.Errorf("%s: tensor %q: storage %q missing from the archive", tf.path, name, t.st.key)
	}
	es := t.st.dtype.Size()
	if t.st.numel < 0 || e.UncompressedSize64 != uint64(t.st.numel)*uint64(es) {
		return fmt.Errorf("%s: tensor %q: storage %q holds %d bytes, expected %d elements of %s", tf.path, name, t.st.key, e.UncompressedSize64, t.st.numel, t.st.dtype)
	}
	if len(t.size) != len(t.stride) || t.offset < 0 {
		return fmt.Errorf("%s: tensor %q: malformed view", tf.path, name)
	}
	hi := t.offset // largest element index touched
	for i, d := range t.size {
		if d < 0 || t.stride[i] < 0 {
			return fmt.Errorf("%s: tensor %q: malformed view", tf.path, name)
		}
		if d == 0 {
			return nil
		}
		if d > 1 && t.stride[i] > t.st.numel/int64(d-1) {
			return fmt.Errorf("%s: tensor %q: shape %v with strides %v exceeds its storage", tf.path, name, t.size, t.stride)
		}
		hi += int64(d-1) * t.stride[i]
		if hi < 0 || hi > t.st.numel {
			return fmt.Errorf("%s: tensor %q: shape %v with strides %v exceeds its storage", tf.path, name, t.size, t.stride)
		}
	}
	if hi >= t.st.numel {
		return fmt.Errorf("%s: tensor %q: view reaches element %d of a storage of %d", tf.path, name, hi, t.st.numel)
	}
	return nil
}

// contiguous reports whether a view is row-major without gaps.
func contiguous(t *tensorRef) bool {
	want := int64(1)
	for i := len(t.size) - 1; i >= 0; i-- {
		if t.size[i] != 1 && t.stride[i] != want {
			return false
		}
		want *= int64(t.size[i])
	}
	return true
}

func (s *torchSet) Names() []string { return s.names }
func (s *torchSet) Paths() []string { return s.paths }

func (s *torchSet) Close() error {
	for _, f := range s.files {
		f.f.Close()
	}
	s.files = nil
	return nil
}

// Info describes a tensor; Begin/End span its elements' bytes as if stored contiguously.
func (s *torchSet) Info(name string) (safetensors.TensorInfo, bool) {
	t := s.refs[name]
	if t == nil {
		return safetensors.TensorInfo{}, false
	}
	info := safetensors.TensorInfo{Name: name, DType: t.st.dtype, Shape: t.size}
	info.End = info.NumElements() * t.st.dtype.Size()
	return info, true
}

// ReadFloat32 reads the named tensor (any strides) into dst, converting to float32.
func (s *torchSet) ReadFloat32(name string, dst []float32) error {
	t, tf := s.refs[name], s.where[name]
	if t == nil {
		return fmt.Errorf("no tensor %q in %s", name, strings.Join(s.paths, ", "))
	}
	info, _ := s.Info(name)
	if !t.st.dtype.Float() {
		return fmt.Errorf("%s: tensor %q: dtype %s cannot be read as float32", tf.path, name, t.st.dtype)
	}
	if int64(len(dst)) != info.NumElements() {
		return fmt.Errorf("%s: tensor %q has %d elements (shape %v), destination has %d", tf.path, name, info.NumElements(), t.size, len(dst))
	}
	if len(dst) == 0 {
		return nil
	}
	es := t.st.dtype.Size()
	e := tf.entries[t.st.key]
	if contiguous(t) && e.Method == zip.Store {
		// Row-major views (all that save_pretrained writes) are read in chunks.
		base, err := e.DataOffset()
		if err != nil {
			return err
		}
		per := int64(1<<20) / es
		buf := make([]byte, min(int64(len(dst)), per)*es)
		for done := int64(0); done < int64(len(dst)); {
			k := min(int64(len(dst))-done, per)
			b := buf[:k*es]
			if _, err := tf.f.ReadAt(b, base+(t.offset+done)*es); err != nil {
				return fmt.Errorf("%s: tensor %q: %w", tf.path, name, err)
			}
			if err := safetensors.DecodeFloat32(t.st.dtype, dst[done:done+k], b); err != nil {
				return err
			}
			done += k
		}
		return nil
	}
	// Span of storage elements the view touches.
	hi := t.offset
	for i, d := range t.size {
		hi += int64(d-1) * t.stride[i]
	}
	raw := make([]byte, (hi-t.offset+1)*es)
	if e.Method == zip.Store {
		off, err := e.DataOffset()
		if err != nil {
			return err
		}
		if _, err := tf.f.ReadAt(raw, off+t.offset*es); err != nil {
			return fmt.Errorf("%s: tensor %q: %w", tf.path, name, err)
		}
	} else {
		rc, err := e.Open()
		if err != nil {
			return err
		}
		_, err = io.CopyN(io.Discard, rc, t.offset*es)
		if err == nil {
			_, err = io.ReadFull(rc, raw)
		}
		rc.Close()
		if err != nil {
			return fmt.Errorf("%s: tensor %q: %w", tf.path, name, err)
		}
	}
	// Gather in row-major order of the view.
	idx := make([]int, len(t.size))
	for k := range dst {
		var pos int64
		for i, j := range idx {
			pos += int64(j) * t.stride[i]
		}
		b := raw[pos*es:]
		switch t.st.dtype {
		case safetensors.F32:
			dst[k] = math.Float32frombits(binary.LittleEndian.Uint32(b))
		case safetensors.F16:
			dst[k] = safetensors.HalfToFloat32(binary.LittleEndian.Uint16(b))
		case safetensors.BF16:
			dst[k] = safetensors.BF16ToFloat32(binary.LittleEndian.Uint16(b))
		case safetensors.F64:
			dst[k] = float32(math.Float64frombits(binary.LittleEndian.Uint64(b)))
		}
		for i := len(idx) - 1; i >= 0; i-- {
			idx[i]++
			if idx[i] < t.size[i] {
				break
			}
			idx[i] = 0
		}
	}
	return nil
}

// ---- a restricted unpickler ---------------------------------------------------------------

type pyGlobal struct{ module, name string }
type pyMark struct{}
type pyTuple []any
type pyList struct{ items []any }
type pyDict struct {
	keys, vals []any
}

func (d *pyDict) set(k, v any) {
	for i, x := range d.keys {
		if x == k {
			d.vals[i] = v
			return
		}
	}
	d.keys = append(d.keys, k)
	d.vals = append(d.vals, v)
}

var storageTypes = map[string]safetensors.DType{
	"FloatStorage": safetensors.F32, "HalfStorage": safetensors.F16, "BFloat16Storage": safetensors.BF16,
	"DoubleStorage": safetensors.F64, "LongStorage": safetensors.I64, "IntStorage": safetensors.I32,
	"ShortStorage": safetensors.I16, "CharStorage": safetensors.I8, "ByteStorage": safetensors.U8,
	"BoolStorage": safetensors.Bool,
}

func allowedGlobal(g pyGlobal) bool {
	switch g.module + "." + g.name {
	case "collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter",
		"torch._utils._rebuild_parameter_with_state", "torch._tensor._rebuild_from_type_v2",
		"torch.Tensor", "torch.nn.parameter.Parameter":
		return true
	}
	_, ok := storageTypes[g.name]
	return ok && g.module == "torch"
}

var errPickle = errors.New("malformed pickle")

// unpickle runs the opcodes a torch.save'd state dict uses (pickle protocols 2 to 5).
func unpickle(data []byte) (any, error) {
	var stack []any
	memo := map[int64]any{}
	pos := 0
	need := func(n int) ([]byte, error) {
		if n < 0 || pos+n > len(data) {
			return nil, errPickle
		}
		b := data[pos : pos+n]
		pos += n
		return b, nil
	}
	pop := func() (any, error) {
		if len(stack) == 0 {
			return nil, errPickle
		}
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		return v, nil
	}
	popMark := func() ([]any, error) {
		for i := len(stack) - 1; i >= 0; i-- {
			if _, ok := stack[i].(pyMark); ok {
				items := append([]any(nil), stack[i+1:]...)
				stack = stack[:i]
				return items, nil
			}
		}
		return nil, errPickle
	}
	for {
		if pos >= len(data) {
			return nil, fmt.Errorf("%w: no STOP", errPickle)
		}
		op := data[pos]
		pos++
		switch op {
		case 0x80: // PROTO
			if _, err := need(1); err != nil {
				return nil, err
			}
		case 0x95: // FRAME
			if _, err := need(8); err != nil {
				return nil, err
			}
		case '.': // STOP
			return pop()
		case '(': // MARK
			stack = append(stack, pyMark{})
		case '}': // EMPTY_DICT
			stack = append(stack, &pyDict{})
		case ']': // EMPTY_LIST
			stack = append(stack, &pyList{})
		case ')': // EMPTY_TUPLE
			stack = append(stack, pyTuple{})
		case 'N':
			stack = append(stack, nil)
		case 0x88:
			stack = append(stack, true)
		case 0x89:
			stack = append(stack, false)
		case 'K': // BININT1
			b, err := need(1)
			if err != nil {
				return nil, err
			}
			stack = append(stack, int64(b[0]))
		case 'M': // BININT2
			b, err := need(2)
			if err != nil {
				return nil, err
			}
			stack = append(stack, int64(binary.LittleEndian.Uint16(b)))
		case 'J': // BININT
			b, err := need(4)
			if err != nil {
				return nil, err
			}
			stack = append(stack, int64(int32(binary.LittleEndian.Uint32(b))))
		case 0x8a: // LONG1
			b, err := need(1)
			if err != nil {
				return nil, err
			}
			b, err = need(int(b[0]))
			if err != nil || len(b) > 8 {
				return nil, errPickle
			}
			var v int64
			for i := len(b) - 1; i >= 0; i-- {
				v = v<<8 | int64(b[i])
			}
			if len(b) > 0 && len(b) < 8 && b[len(b)-1]&0x80 != 0 {
				v -= 1 << (8 * len(b))
			}
			stack = append(stack, v)
		case 'G': // BINFLOAT
			b, err := need(8)
			if err != nil {
				return nil, err
			}
			stack = append(stack, math.Float64frombits(binary.BigEndian.Uint64(b)))
		case 'X', 0x8c, 0x8d, 'B', 'C', 0x8e: // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8, BINBYTES, SHORT_BINBYTES, BINBYTES8
			var n int
			switch op {
			case 'X', 'B':
				b, err := need(4)
				if err != nil {
					return nil, err
				}
				n = int(binary.LittleEndian.Uint32(b))
			case 0x8c, 'C':
				b, err := need(1)
				if err != nil {
					return nil, err
				}
				n = int(b[0])
			default:
				b, err := need(8)
				if err != nil {
					return nil, err
				}
				u := binary.LittleEndian.Uint64(b)
				if u > uint64(len(data)) {
					return nil, errPickle
				}
				n = int(u)
			}
			b, err := need(n)
			if err != nil {
				return nil, err
			}
			stack = append(stack, string(b))
		case 'q', 'r', 0x94: // BINPUT, LONG_BINPUT, MEMOIZE
			if len(stack) == 0 {
				return nil, errPickle
			}
			var k int64
			switch op {
			case 'q':
				b, err := need(1)
				if err != nil {
					return nil, err
				}
				k = int64(b[0])
			case 'r':
				b, err := need(4)
				if err != nil {
					return nil, err
				}
				k = int64(binary.LittleEndian.Uint32(b))
			default:
				k = int64(len(memo))
			}
			memo[k] = stack[len(stack)-1]
		case 'h', 'j': // BINGET, LONG_BINGET
			var k int64
			if op == 'h' {
				b, err := need(1)
				if err != nil {
					return nil, err
				}
				k = int64(b[0])
			} else {
				b, err := need(4)
				if err != nil {
					return nil, err
				}
				k = int64(binary.LittleEndian.Uint32(b))
			}
			v, ok := memo[k]
			if !ok {
				return nil, errPickle
			}
			stack = append(stack, v)
		case 'c': // GLOBAL "module\nname\n"
			var parts [2]string
			for i := range parts {
				j := pos
				for j < len(data) && data[j] != '\n' {
					j++
				}
				if j >= len(data) {
					return nil, errPickle
				}
				parts[i] = string(data[pos:j])
				pos = j + 1
			}
			g := pyGlobal{parts[0], parts[1]}
			if !allowedGlobal(g) {
				return nil, fmt.Errorf("refusing pickle global %s.%s (only state dicts of tensors are read)", g.module, g.name)
			}
			stack = append(stack, g)
		case 0x93: // STACK_GLOBAL
			name, err1 := pop()
			mod, err2 := pop()
			ns, ok1 := name.(string)
			ms, ok2 := mod.(string)
			if err1 != nil || err2 != nil || !ok1 || !ok2 {
				return nil, errPickle
			}
			g := pyGlobal{ms, ns}
			if !allowedGlobal(g) {
				return nil, fmt.Errorf("refusing pickle global %s.%s (only state dicts of tensors are read)", g.module, g.name)
			}
			stack = append(stack, g)
		case 't': // TUPLE
			items, err := popMark()
			if err != nil {
				return nil, err
			}
			stack = append(stack, pyTuple(items))
		case 0x85, 0x86, 0x87: // TUPLE1..3
			n := int(op - 0x84)
			if len(stack) < n {
				return nil, errPickle
			}
			t := append(pyTuple(nil), stack[len(stack)-n:]...)
			stack = append(stack[:len(stack)-n], t)
		case 'l': // LIST
			items, err := popMark()
			if err != nil {
				return nil, err
			}
			stack = append(stack, &pyList{items})
		case 'd': // DICT
			items, err := popMark()
			if err != nil || len(items)%2 != 0 {
				return nil, errPickle
			}
			d := &pyDict{}
			for i := 0; i < len(items); i += 2 {
				if !hashable(items[i]) {
					return nil, errPickle
				}
				d.set(items[i], items[i+1])
			}
			stack = append(stack, d)
		case 'a': // APPEND
			v, err := pop()
			if err != nil || len(stack) == 0 {
				return nil, errPickle
			}
			l, ok := stack[len(stack)-1].(*pyList)
			if !ok {
				return nil, errPickle
			}
			l.items = append(l.items, v)
		case 'e': // APPENDS
			items, err := popMark()
			if err != nil || len(stack) == 0 {
				return nil, errPickle
			}
			l, ok := stack[len(stack)-1].(*pyList)
			if !ok {
				return nil, errPickle
			}
			l.items = append(l.items, items...)
		case 's': // SETITEM
			v, err1 := pop()
			k, err2 := pop()
			if err1 != nil || err2 != nil || len(stack) == 0 {
				return nil, errPickle
			}
			d, ok := stack[len(stack)-1].(*pyDict)
			if !ok || !hashable(k) {
				return nil, errPickle
			}
			d.set(k, v)
		case 'u': // SETITEMS
			items, err := popMark()
			if err != nil || len(items)%2 != 0 || len(stack) == 0 {
				return nil, errPickle
			}
			d, ok := stack[len(stack)-1].(*pyDict)
			if !ok {
				return nil, errPickle
			}
			for i := 0; i < len(items); i += 2 {
				if !hashable(items[i]) {
					return nil, errPickle
				}
				d.set(items[i], items[i+1])
			}
		case 'b': // BUILD: state of an object; ignored (a state dict's _metadata, a tensor's hooks)
			if _, err := pop(); err != nil || len(stack) == 0 {
				return nil, errPickle
			}
		case 'Q': // BINPERSID
			pid, err := pop()
			if err != nil {
				return nil, err
			}
			ref, err := persistentLoad(pid)
			if err != nil {
				return nil, err
			}
			stack = append(stack, ref)
		case 'R': // REDUCE
			args, err1 := pop()
			fn, err2 := pop()
			if err1 != nil || err2 != nil {
				return nil, errPickle
			}
			v, err := call(fn, args)
			if err != nil {
				return nil, err
			}
			stack = append(stack, v)
		default:
			return nil, fmt.Errorf("%w: unsupported opcode 0x%02x at byte %d", errPickle, op, pos-1)
		}
		if len(stack) > 1<<20 {
			return nil, fmt.Errorf("%w: stack too deep", errPickle)
		}
	}
}

func hashable(k any) bool {
	switch k.(type) {
	case string, int64, bool, nil, float64:
		return true
	}
	return false
}

// persistentLoad resolves ('storage', StorageType, key, location, numel).
func persistentLoad(pid any) (*storageRef, error) {
	t, ok := pid.(pyTuple)
	if !ok || len(t) != 5 || t[0] != "storage" {
		return nil, fmt.Errorf("%w: unexpected persistent id %v", errPickle, pid)
	}
	g, ok1 := t[1].(pyGlobal)
	key, ok2 := t[2].(string)
	numel, ok3 := t[4].(int64)
	if !ok1 || !ok2 || !ok3 {
		return nil, fmt.Errorf("%w: unexpected persistent id %v", errPickle, pid)
	}
	dt, ok := storageTypes[g.name]
	if !ok {
		return nil, fmt.Errorf("unsupported storage type %s", g.name)
	}
	return &storageRef{dtype: dt, key: key, numel: numel}, nil
}

func ints(v any) ([]int64, bool) {
	t, ok := v.(pyTuple)
	if !ok {
		return nil, false
	}
	out := make([]int64, len(t))
	for i, x := range t {
		n, ok := x.(int64)
		if !ok {
			return nil, false
		}
		out[i] = n
	}
	return out, true
}

// call applies one of the allowed globals.
func call(fn, args any) (any, error) {
	g, ok := fn.(pyGlobal)
	a, ok2 := args.(pyTuple)
	if !ok || !ok2 {
		return nil, fmt.Errorf("%w: REDUCE of %T", errPickle, fn)
	}
	switch g.module + "." + g.name {
	case "collections.OrderedDict":
		return &pyDict{}, nil
	case "torch._utils._rebuild_tensor_v2":
		// (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
		if len(a) < 4 {
			return nil, fmt.Errorf("%w: _rebuild_tensor_v2 with %d arguments", errPickle, len(a))
		}
		st, ok1 := a[0].(*storageRef)
		off, ok2 := a[1].(int64)
		size, ok3 := ints(a[2])
		stride, ok4 := ints(a[3])
		if !ok1 || !ok2 || !ok3 || !ok4 {
			return nil, fmt.Errorf("%w: _rebuild_tensor_v2 arguments", errPickle)
		}
		t := &tensorRef{st: st, offset: off, stride: stride}
		for _, d := range size {
			if d < 0 || d > math.MaxInt32 {
				return nil, fmt.Errorf("%w: dimension %d", errPickle, d)
			}
			t.size = append(t.size, int(d))
		}
		if t.size == nil {
			t.size = []int{}
		}
		return t, nil
	case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state":
		if len(a) < 1 {
			return nil, errPickle
		}
		return a[0], nil
	case "torch._tensor._rebuild_from_type_v2":
		// (func, type, args, state): the tensor is func(*args)
		if len(a) < 3 {
			return nil, errPickle
		}
		return call(a[0], a[2])
	}
	return nil, fmt.Errorf("refusing to call %s.%s", g.module, g.name)
}
