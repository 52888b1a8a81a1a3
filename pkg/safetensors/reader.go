// Package safetensors reads and writes the safetensors tensor format of Hugging Face, single
// files and sharded checkpoints (model.safetensors.index.json).
//
// A file is: an 8-byte little-endian header length N, N bytes of JSON header, then the data
// area. The header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]}
// (offsets relative to the start of the data area) and may hold "__metadata__", a map of
// strings. Every byte of the data area belongs to exactly one tensor: no holes, no overlaps.
//
// Reading validates the whole header before anything is allocated by its size: the header
// length against the file size and MaxHeaderSize, known dtypes, shape × dtype size against
// the byte range, ranges inside the data area, contiguous coverage, duplicate names. Tensors
// are then read on demand through an io.ReaderAt (pread on an *os.File), one at a time, so a
// tool can stream a large checkpoint tensor by tensor.
package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"os"
	"sort"
)

// MaxHeaderSize bounds the JSON header (100 MB, as the reference implementation does).
const MaxHeaderSize = 100 << 20

// TensorInfo describes one tensor of a file.
type TensorInfo struct {
	Name  string
	DType DType
	Shape []int
	// Begin and End are byte offsets into the data area: the tensor is data[Begin:End].
	Begin, End int64
}

// NumElements returns the product of the shape (1 for a scalar).
func (t TensorInfo) NumElements() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= int64(d)
	}
	return n
}

// File is an open safetensors file. Its methods are safe for concurrent use when the
// underlying io.ReaderAt is (an *os.File is).
type File struct {
	name      string // for error messages
	r         io.ReaderAt
	closer    io.Closer
	dataStart int64
	dataSize  int64
	metadata  map[string]string
	tensors   []TensorInfo // in data order
	byName    map[string]int
}

// Open opens and validates the safetensors file at path.
func Open(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	sf, err := NewReader(f, st.Size())
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	sf.name = path
	sf.closer = f
	return sf, nil
}

// NewReader validates the header of a safetensors file of the given size read through r.
// Errors do not name the file; Open adds the path.
func NewReader(r io.ReaderAt, size int64) (*File, error) {
	if size < 8 {
		return nil, fmt.Errorf("safetensors: file of %d bytes is shorter than the 8-byte header length", size)
	}
	var lenBuf [8]byte
	if _, err := r.ReadAt(lenBuf[:], 0); err != nil {
		return nil, fmt.Errorf("safetensors: reading header length: %w", err)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n > MaxHeaderSize {
		return nil, fmt.Errorf("safetensors: header length %d exceeds the limit of %d bytes", n, MaxHeaderSize)
	}
	if int64(n) > size-8 {
		return nil, fmt.Errorf("safetensors: header length %d exceeds the %d bytes after the length field", n, size-8)
	}
	if n < 2 {
		return nil, fmt.Errorf("safetensors: header length %d is too small for a JSON object", n)
	}
	hdr := make([]byte, n)
	if _, err := r.ReadAt(hdr, 8); err != nil {
		return nil, fmt.Errorf("safetensors: reading header: %w", err)
	}
	f := &File{r: r, dataStart: 8 + int64(n), dataSize: size - 8 - int64(n)}
	if err := f.parseHeader(hdr); err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	return f, nil
}

type rawTensor struct {
	DType       *string  `json:"dtype"`
	Shape       *[]int64 `json:"shape"`
	DataOffsets *[]int64 `json:"data_offsets"`
}

func (f *File) parseHeader(hdr []byte) error {
	if hdr[0] != '{' {
		return errors.New("header does not start with '{'")
	}
	dec := json.NewDecoder(bytes.NewReader(hdr))
	dec.UseNumber()
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("header JSON: %w", err)
	}
	f.byName = map[string]int{}
	seenMeta := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("header JSON: %w", err)
		}
		name, ok := tok.(string)
		if !ok {
			return fmt.Errorf("header JSON: expected a key, got %v", tok)
		}
		if name == "__metadata__" {
			if seenMeta {
				return errors.New("header has __metadata__ twice")
			}
			seenMeta = true
			if err := dec.Decode(&f.metadata); err != nil {
				return fmt.Errorf("__metadata__ must map strings to strings: %w", err)
			}
			continue
		}
		if _, dup := f.byName[name]; dup {
			return fmt.Errorf("tensor %q appears twice in the header", name)
		}
		var rt rawTensor
		if err := dec.Decode(&rt); err != nil {
			return fmt.Errorf("tensor %q: %w", name, err)
		}
		t, err := f.checkTensor(name, rt)
		if err != nil {
			return err
		}
		f.byName[name] = len(f.tensors)
		f.tensors = append(f.tensors, t)
	}
	if _, err := dec.Token(); err != nil { // closing '}'
		return fmt.Errorf("header JSON: %w", err)
	}
	// Only padding (spaces, as the reference writer uses) may follow the object.
	rest := hdr[dec.InputOffset():]
	if len(bytes.TrimRight(rest, " \t\r\n\x00")) != 0 {
		return errors.New("header JSON: trailing data after the object")
	}
	return f.checkCoverage()
}

func (f *File) checkTensor(name string, rt rawTensor) (TensorInfo, error) {
	if rt.DType == nil || rt.Shape == nil || rt.DataOffsets == nil {
		return TensorInfo{}, fmt.Errorf("tensor %q: needs dtype, shape and data_offsets", name)
	}
	t := TensorInfo{Name: name, DType: DType(*rt.DType)}
	es := t.DType.Size()
	if es == 0 {
		return t, fmt.Errorf("tensor %q: unknown dtype %q", name, *rt.DType)
	}
	off := *rt.DataOffsets
	if len(off) != 2 {
		return t, fmt.Errorf("tensor %q: data_offsets must have 2 entries, has %d", name, len(off))
	}
	t.Begin, t.End = off[0], off[1]
	if t.Begin < 0 || t.End < t.Begin {
		return t, fmt.Errorf("tensor %q: invalid data_offsets [%d, %d]", name, t.Begin, t.End)
	}
	if t.End > f.dataSize {
		return t, fmt.Errorf("tensor %q: data_offsets [%d, %d] run past the data area of %d bytes", name, t.Begin, t.End, f.dataSize)
	}
	// Product of the shape, with overflow detection.
	n := uint64(1)
	t.Shape = make([]int, len(*rt.Shape))
	for i, d := range *rt.Shape {
		if d < 0 || d > math.MaxInt32*int64(1<<20) {
			return t, fmt.Errorf("tensor %q: invalid dimension %d", name, d)
		}
		t.Shape[i] = int(d)
		hi, lo := bits.Mul64(n, uint64(d))
		if hi != 0 || lo > math.MaxInt64 {
			return t, fmt.Errorf("tensor %q: shape %v overflows", name, *rt.Shape)
		}
		n = lo
	}
	hi, nb := bits.Mul64(n, uint64(es))
	if hi != 0 || nb != uint64(t.End-t.Begin) {
		return t, fmt.Errorf("tensor %q: shape %v of %s needs %d×%d bytes but data_offsets [%d, %d] hold %d",
			name, t.Shape, t.DType, n, es, t.Begin, t.End, t.End-t.Begin)
	}
	return t, nil
}

// checkCoverage verifies that the tensors tile the data area exactly, and orders them by offset.
func (f *File) checkCoverage() error {
	sort.SliceStable(f.tensors, func(i, j int) bool {
		a, b := f.tensors[i], f.tensors[j]
		if a.Begin != b.Begin {
			return a.Begin < b.Begin
		}
		return a.End < b.End
	})
	pos := int64(0)
	for i, t := range f.tensors {
		if t.Begin < pos {
			return fmt.Errorf("tensor %q: data_offsets [%d, %d] overlap tensor %q", t.Name, t.Begin, t.End, f.tensors[i-1].Name)
		}
		if t.Begin > pos {
			return fmt.Errorf("tensor %q: data_offsets [%d, %d] leave a hole at bytes [%d, %d)", t.Name, t.Begin, t.End, pos, t.Begin)
		}
		pos = t.End
		f.byName[t.Name] = i
	}
	if pos != f.dataSize {
		return fmt.Errorf("tensors cover %d bytes but the data area holds %d", pos, f.dataSize)
	}
	return nil
}

// Close closes the underlying file when the File came from Open.
func (f *File) Close() error {
	if f.closer != nil {
		return f.closer.Close()
	}
	return nil
}

// Metadata returns the __metadata__ map (nil when absent). Do not modify it.
func (f *File) Metadata() map[string]string { return f.metadata }

// Tensors returns the tensors in the order of their data. Do not modify the result.
func (f *File) Tensors() []TensorInfo { return f.tensors }

// Names returns the tensor names in the order of their data.
func (f *File) Names() []string {
	out := make([]string, len(f.tensors))
	for i, t := range f.tensors {
		out[i] = t.Name
	}
	return out
}

// Info returns the description of the named tensor.
func (f *File) Info(name string) (TensorInfo, bool) {
	i, ok := f.byName[name]
	if !ok {
		return TensorInfo{}, false
	}
	return f.tensors[i], true
}

func (f *File) where() string {
	if f.name == "" {
		return "safetensors"
	}
	return f.name
}

// ReadRaw returns the raw little-endian bytes of the named tensor.
func (f *File) ReadRaw(name string) ([]byte, error) {
	t, ok := f.Info(name)
	if !ok {
		return nil, fmt.Errorf("%s: no tensor %q", f.where(), name)
	}
	buf := make([]byte, t.End-t.Begin)
	if _, err := f.r.ReadAt(buf, f.dataStart+t.Begin); err != nil && !(err == io.EOF && len(buf) == 0) {
		return nil, fmt.Errorf("%s: tensor %q: %w", f.where(), name, err)
	}
	return buf, nil
}

// chunkBytes is the read granularity of ReadFloat32: conversion needs no buffer the size of
// the tensor.
const chunkBytes = 1 << 20

// ReadFloat32 reads the named tensor into dst, converting F32, F16, BF16 or F64 to float32.
// len(dst) must equal the tensor's element count.
func (f *File) ReadFloat32(name string, dst []float32) error {
	t, ok := f.Info(name)
	if !ok {
		return fmt.Errorf("%s: no tensor %q", f.where(), name)
	}
	if !t.DType.Float() {
		return fmt.Errorf("%s: tensor %q: dtype %s cannot be read as float32 (supported: F32, F16, BF16, F64)", f.where(), name, t.DType)
	}
	n := t.NumElements()
	if int64(len(dst)) != n {
		return fmt.Errorf("%s: tensor %q has %d elements (shape %v), destination has %d", f.where(), name, n, t.Shape, len(dst))
	}
	es := t.DType.Size()
	per := int64(chunkBytes) / es
	buf := make([]byte, min(n, per)*es)
	for done := int64(0); done < n; {
		k := min(n-done, per)
		b := buf[:k*es]
		if _, err := f.r.ReadAt(b, f.dataStart+t.Begin+done*es); err != nil {
			return fmt.Errorf("%s: tensor %q: %w", f.where(), name, err)
		}
		if err := decode(t.DType, dst[done:done+k], b); err != nil {
			return err
		}
		done += k
	}
	return nil
}

// Float32 reads the named tensor as a new float32 slice (see ReadFloat32).
func (f *File) Float32(name string) ([]float32, error) {
	t, ok := f.Info(name)
	if !ok {
		return nil, fmt.Errorf("%s: no tensor %q", f.where(), name)
	}
	if !t.DType.Float() {
		return nil, fmt.Errorf("%s: tensor %q: dtype %s cannot be read as float32 (supported: F32, F16, BF16, F64)", f.where(), name, t.DType)
	}
	dst := make([]float32, t.NumElements())
	return dst, f.ReadFloat32(name, dst)
}
