package embed

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/cpo-toolchain/cpo/pkg/shard"
)

// npyHeaderLen is the fixed size of the .npy preamble written here: magic, version, header
// length and the header dict padded with spaces to a newline, so the shape can be rewritten in
// place once the number of rows is known.
const npyHeaderLen = 128

// EmbeddingWriter writes candidate embeddings as a NumPy .npy file of float32, shape (M, C) in
// C order (row-major, little-endian '<f4'), M = the number of candidates of all rows in input
// order, plus a JSON-lines index beside it (IndexPath) whose line m names embedding m:
// {"row": input row number, "id": row id, "candidate": index in the row, "kind": kind}.
// numpy.load reads the .npy file. Both files are written under hidden temporary names and renamed
// into place by Close; Abort removes them.
type EmbeddingWriter struct {
	path, tmp, idxTmp string
	f, idx            *os.File
	w, iw             *bufio.Writer
	c                 int
	m, rows           int64
	buf               []byte
}

// IndexPath is the index file of the .npy file path: the same name with ".index.jsonl" in place
// of a ".npy" suffix.
func IndexPath(path string) string {
	return strings.TrimSuffix(path, ".npy") + ".index.jsonl"
}

// NewEmbeddingWriter starts writing embeddings of width c to path (a .npy file) and its index.
func NewEmbeddingWriter(path string, c int) (*EmbeddingWriter, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return nil, err
	}
	ibase := filepath.Base(IndexPath(path))
	idx, err := os.CreateTemp(dir, "."+ibase+".tmp-*")
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	e := &EmbeddingWriter{path: path, tmp: f.Name(), idxTmp: idx.Name(), f: f, idx: idx,
		w: bufio.NewWriterSize(f, 1<<20), iw: bufio.NewWriter(idx), c: c}
	if _, err := e.w.Write(npyHeader(0, c)); err != nil {
		e.Abort()
		return nil, err
	}
	return e, nil
}

// npyHeader is the 128-byte .npy v1.0 preamble of an (m, c) float32 array.
func npyHeader(m int64, c int) []byte {
	dict := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }", m, c)
	h := make([]byte, 0, npyHeaderLen)
	h = append(h, "\x93NUMPY\x01\x00"...)
	h = binary.LittleEndian.AppendUint16(h, npyHeaderLen-10)
	h = append(h, dict...)
	for len(h) < npyHeaderLen-1 {
		h = append(h, ' ')
	}
	return append(h, '\n')
}

// Write appends the K embeddings of one row.
func (e *EmbeddingWriter) Write(row *shard.Candidates, emb [][]float32) error {
	for j, v := range emb {
		if len(v) != e.c {
			return fmt.Errorf("embedding of width %d, want %d", len(v), e.c)
		}
		e.buf = e.buf[:0]
		for _, x := range v {
			e.buf = binary.LittleEndian.AppendUint32(e.buf, math.Float32bits(x))
		}
		if _, err := e.w.Write(e.buf); err != nil {
			return err
		}
		line, _ := json.Marshal(struct {
			Row       int64  `json:"row"`
			ID        string `json:"id"`
			Candidate int    `json:"candidate"`
			Kind      string `json:"kind"`
		}{e.rows, row.ID, j, row.Candidates[j].Kind})
		e.iw.Write(append(line, '\n'))
		e.m++
	}
	e.rows++
	return nil
}

// Close writes the final shape into the header, syncs and renames both files into place.
func (e *EmbeddingWriter) Close() error {
	err := e.w.Flush()
	if err == nil {
		_, err = e.f.WriteAt(npyHeader(e.m, e.c), 0)
	}
	if err == nil {
		// CreateTemp makes the files 0600; the outputs are ordinary files, readable as any other.
		err = e.f.Chmod(0o644)
	}
	if err == nil {
		err = e.idx.Chmod(0o644)
	}
	if err == nil {
		err = e.f.Sync()
	}
	if err == nil {
		err = e.iw.Flush()
	}
	if err == nil {
		err = e.idx.Sync()
	}
	if err != nil {
		e.Abort()
		return err
	}
	e.f.Close()
	e.idx.Close()
	if err := os.Rename(e.tmp, e.path); err != nil {
		e.Abort()
		return err
	}
	if err := os.Rename(e.idxTmp, IndexPath(e.path)); err != nil {
		os.Remove(e.idxTmp)
		return err
	}
	return nil
}

// Abort removes the temporary files.
func (e *EmbeddingWriter) Abort() {
	e.f.Close()
	e.idx.Close()
	os.Remove(e.tmp)
	os.Remove(e.idxTmp)
}

var npyShape = regexp.MustCompile(`'shape': \((\d+), (\d+)\)`)

// ReadNPY reads a 2-D little-endian float32 .npy file (as written by EmbeddingWriter) and returns
// its shape and values, row-major.
func ReadNPY(r io.Reader) (m, c int, data []float32, err error) {
	var pre [10]byte
	if _, err = io.ReadFull(r, pre[:]); err != nil {
		return 0, 0, nil, err
	}
	if string(pre[:6]) != "\x93NUMPY" || pre[6] != 1 {
		return 0, 0, nil, fmt.Errorf("not a version 1 .npy file")
	}
	hdr := make([]byte, binary.LittleEndian.Uint16(pre[8:]))
	if _, err = io.ReadFull(r, hdr); err != nil {
		return 0, 0, nil, err
	}
	if !strings.Contains(string(hdr), "'descr': '<f4'") || !strings.Contains(string(hdr), "'fortran_order': False") {
		return 0, 0, nil, fmt.Errorf(".npy header %q: want C-order '<f4'", hdr)
	}
	s := npyShape.FindStringSubmatch(string(hdr))
	if s == nil {
		return 0, 0, nil, fmt.Errorf(".npy header %q: want a 2-D shape", hdr)
	}
	m, _ = strconv.Atoi(s[1])
	c, _ = strconv.Atoi(s[2])
	raw := make([]byte, 4*m*c)
	if _, err = io.ReadFull(r, raw); err != nil {
		return 0, 0, nil, err
	}
	data = make([]float32, m*c)
	for i := range data {
		data[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return m, c, data, nil
}
