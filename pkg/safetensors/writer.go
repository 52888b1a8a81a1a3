package safetensors

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Tensor is a float32 tensor to be written: either in memory (Data, row-major, len(Data) =
// product of Shape), or produced on demand by Fill, which the writer calls with a buffer of
// the tensor's size just before writing it, so a tool can stream a model tensor by tensor
// (e.g. averaging checkpoints) without holding it whole.
type Tensor struct {
	Name  string
	Shape []int
	Data  []float32
	Fill  func(dst []float32) error
}

// NumElements is the product of the shape.
func (t Tensor) NumElements() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

func (t Tensor) check() error {
	n := 1
	for _, d := range t.Shape {
		if d < 0 {
			return fmt.Errorf("tensor %q: negative dimension in shape %v", t.Name, t.Shape)
		}
		n *= d
	}
	if t.Fill != nil && t.Data != nil {
		return fmt.Errorf("tensor %q: give Data or Fill, not both", t.Name)
	}
	if t.Fill == nil && n != len(t.Data) {
		return fmt.Errorf("tensor %q: shape %v has %d elements but data has %d", t.Name, t.Shape, n, len(t.Data))
	}
	if t.Name == "" || t.Name == "__metadata__" {
		return fmt.Errorf("invalid tensor name %q", t.Name)
	}
	return nil
}

// header builds the padded JSON header for tensors stored as dtype, in the given order.
func header(tensors []Tensor, dtype DType, metadata map[string]string) ([]byte, error) {
	es := dtype.Size()
	if dtype != F32 && dtype != BF16 {
		return nil, fmt.Errorf("safetensors: cannot write dtype %q (supported: F32, BF16)", dtype)
	}
	var sb strings.Builder
	sb.WriteByte('{')
	if len(metadata) > 0 {
		mb, err := json.Marshal(metadata) // keys sorted
		if err != nil {
			return nil, err
		}
		sb.WriteString(`"__metadata__":`)
		sb.Write(mb)
	}
	seen := make(map[string]bool, len(tensors))
	off := int64(0)
	for i, t := range tensors {
		if err := t.check(); err != nil {
			return nil, fmt.Errorf("safetensors: %w", err)
		}
		if seen[t.Name] {
			return nil, fmt.Errorf("safetensors: tensor %q given twice", t.Name)
		}
		seen[t.Name] = true
		if i > 0 || len(metadata) > 0 {
			sb.WriteByte(',')
		}
		nb, _ := json.Marshal(t.Name)
		sb.Write(nb)
		sb.WriteString(`:{"dtype":"` + string(dtype) + `","shape":[`)
		for j, d := range t.Shape {
			if j > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString(strconv.Itoa(d))
		}
		end := off + int64(t.NumElements())*es
		fmt.Fprintf(&sb, `],"data_offsets":[%d,%d]}`, off, end)
		off = end
	}
	sb.WriteByte('}')
	// Pad with spaces so the data area starts 8-byte aligned, as the reference writer does.
	for (8+sb.Len())%8 != 0 {
		sb.WriteByte(' ')
	}
	return []byte(sb.String()), nil
}

// Write writes tensors in the given order, stored as dtype (F32, or BF16 rounded to nearest
// even), with optional string metadata. It streams: no buffer the size of a tensor is made.
func Write(w io.Writer, tensors []Tensor, dtype DType, metadata map[string]string) error {
	hdr, err := header(tensors, dtype, metadata)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(hdr)))
	bw.Write(lenBuf[:])
	bw.Write(hdr)
	es := int(dtype.Size())
	const per = 1 << 16
	buf := make([]byte, per*es)
	var fillBuf []float32
	for _, t := range tensors {
		data := t.Data
		if t.Fill != nil {
			n := t.NumElements()
			if cap(fillBuf) < n {
				fillBuf = make([]float32, n)
			}
			data = fillBuf[:n]
			clear(data)
			if err := t.Fill(data); err != nil {
				return fmt.Errorf("tensor %q: %w", t.Name, err)
			}
		}
		for i := 0; i < len(data); i += per {
			src := data[i:min(i+per, len(data))]
			b := buf[:len(src)*es]
			if err := encode(dtype, b, src); err != nil {
				return err
			}
			if _, err := bw.Write(b); err != nil {
				return err
			}
		}
	}
	return bw.Flush()
}

// Size returns the number of bytes Write produces for these tensors.
func Size(tensors []Tensor, dtype DType, metadata map[string]string) (int64, error) {
	hdr, err := header(tensors, dtype, metadata)
	if err != nil {
		return 0, err
	}
	n := 8 + int64(len(hdr))
	for _, t := range tensors {
		n += int64(t.NumElements()) * dtype.Size()
	}
	return n, nil
}

// WriteFile writes a safetensors file atomically: to a temporary file in the same directory,
// synced, then renamed over path.
func WriteFile(path string, tensors []Tensor, dtype DType, metadata map[string]string) error {
	return AtomicWrite(path, func(w io.Writer) error { return Write(w, tensors, dtype, metadata) })
}

// AtomicWrite creates path atomically: fill writes the content into a temporary file in the
// same directory, which is fsynced and renamed over path; the directory is then fsynced.
// On any error the temporary file is removed and path is left untouched.
func AtomicWrite(path string, fill func(io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = fill(tmp); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err = tmp.Chmod(0o644); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return SyncDir(dir)
}

// SyncDir fsyncs a directory so that renames inside it are durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !os.IsPermission(err) {
		return err
	}
	return nil
}
