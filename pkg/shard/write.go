package shard

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"
)

// Defaults of the writer options.
const (
	DefaultRowGroupRows = 10000
	DefaultZstdLevel    = 3
)

// Options control how shards are written.
type Options struct {
	// RowGroupRows is the number of rows per Parquet row group (default DefaultRowGroupRows).
	// Output to a pipe is flushed row group by row group.
	RowGroupRows int
	// ShardRows splits a directory output into files of at most this many rows
	// (part-00000.parquet, part-00001.parquet, ...); 0 writes a single part.
	ShardRows int64
	// ZstdLevel is the zstd level: 1 fastest, 3 default, 7 better, 11 best.
	ZstdLevel int
	// Writer is recorded in the cpo.writer metadata (e.g. "cpo-tokenize v0.1.0").
	Writer string
	// Metadata is extra key/value metadata written into every file.
	Metadata map[string]string
}

func (o Options) withDefaults() Options {
	if o.RowGroupRows <= 0 {
		o.RowGroupRows = DefaultRowGroupRows
	}
	if o.ZstdLevel <= 0 {
		o.ZstdLevel = DefaultZstdLevel
	}
	return o
}

func zstdLevel(l int) zstd.Level {
	switch {
	case l <= 1:
		return zstd.SpeedFastest
	case l <= 3:
		return zstd.SpeedDefault
	case l <= 7:
		return zstd.SpeedBetterCompression
	default:
		return zstd.SpeedBestCompression
	}
}

// Writer writes rows of type T to standard output, to one file, or to a directory of parts.
// File and directory outputs are atomic: rows go to a hidden temporary name in the target's
// directory and are renamed into place by Close, so an interrupted run never leaves a shard (or
// a directory of shards) under the final name. Call Abort instead of Close on failure.
type Writer[T Row] struct {
	opts Options
	info Info
	mode int // modeStdout, modeFile, modeDir

	final  string // final file or directory path
	tmpDir string // modeDir: temporary directory holding the parts

	out     io.Writer // current destination
	bw      *bufio.Writer
	f       *os.File // current temporary file (modeFile, modeDir)
	tmpName string
	pw      *parquet.GenericWriter[T]
	rows    int64 // rows in the current part
	parts   int
	total   int64
	done    bool
}

const (
	modeStdout = iota
	modeFile
	modeDir
)

// NewWriter creates a writer. out "" or "-" writes one Parquet stream to stdout (ShardRows must
// be 0). An out ending in ".parquet" writes one file. Any other out is a directory of parts that
// replaces an existing directory of the same name on Close.
func NewWriter[T Row](out string, stdout io.Writer, opts Options) (*Writer[T], error) {
	w := &Writer[T]{opts: opts.withDefaults(), info: InfoOf[T](), final: out}
	switch {
	case out == "" || out == "-":
		if w.opts.ShardRows > 0 {
			return nil, errors.New("--shard-rows needs an output directory (--out DIR)")
		}
		if stdout == nil {
			stdout = os.Stdout
		}
		if f, ok := stdout.(*os.File); ok && IsTerminal(f) {
			return nil, errors.New("refusing to write a binary Parquet shard to a terminal: redirect standard output or give --out")
		}
		w.mode = modeStdout
		w.bw = bufio.NewWriterSize(stdout, 1<<20)
		w.out = w.bw
	case strings.HasSuffix(out, ".parquet"):
		if w.opts.ShardRows > 0 {
			return nil, fmt.Errorf("%s: --shard-rows needs an output directory, not a .parquet file", out)
		}
		w.mode = modeFile
		if err := w.openTemp(filepath.Dir(out), filepath.Base(out)); err != nil {
			return nil, err
		}
	default:
		w.mode = modeDir
		parent := filepath.Dir(filepath.Clean(out))
		if err := os.MkdirAll(parent, 0o755); err != nil {
			return nil, err
		}
		tmp, err := os.MkdirTemp(parent, "."+filepath.Base(filepath.Clean(out))+".tmp-")
		if err != nil {
			return nil, err
		}
		if err := os.Chmod(tmp, 0o755); err != nil { // MkdirTemp makes it 0700
			os.Remove(tmp)
			return nil, err
		}
		w.tmpDir = tmp
	}
	if w.mode != modeDir {
		w.startPart()
	}
	return w, nil
}

func (w *Writer[T]) openTemp(dir, base string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-")
	if err != nil {
		return err
	}
	// CreateTemp makes the file 0600; a shard is data to share like any output file.
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	w.f, w.tmpName = f, f.Name()
	w.bw = bufio.NewWriterSize(f, 1<<20)
	w.out = w.bw
	return nil
}

func (w *Writer[T]) startPart() {
	o := []parquet.WriterOption{
		parquet.Compression(&zstd.Codec{Level: zstdLevel(w.opts.ZstdLevel)}),
		parquet.MaxRowsPerRowGroup(int64(w.opts.RowGroupRows)),
		parquet.KeyValueMetadata(MetaSchema, w.info.Name),
		parquet.KeyValueMetadata(MetaVersion, strconv.Itoa(w.info.Version)),
		parquet.CreatedBy("cpo", "1", ""),
	}
	if w.opts.Writer != "" {
		o = append(o, parquet.KeyValueMetadata(MetaWriter, w.opts.Writer))
	}
	for k, v := range w.opts.Metadata {
		o = append(o, parquet.KeyValueMetadata(k, v))
	}
	w.pw = parquet.NewGenericWriter[T](w.out, o...)
	w.rows = 0
}

// finishPart closes the Parquet stream of the current part and, for files, syncs and closes the
// temporary file (it is renamed later, on Close).
func (w *Writer[T]) finishPart() error {
	if err := w.pw.Close(); err != nil {
		return err
	}
	if err := w.bw.Flush(); err != nil {
		return err
	}
	if w.f != nil {
		if err := w.f.Sync(); err != nil {
			return err
		}
		if err := w.f.Close(); err != nil {
			return err
		}
		w.f = nil
	}
	w.parts++
	w.pw = nil
	return nil
}

// PartName is the file name of part i of a directory output.
func PartName(i int) string { return fmt.Sprintf("part-%05d.parquet", i) }

// Write appends rows, validating each one.
func (w *Writer[T]) Write(rows ...T) error {
	if w.done {
		return errors.New("write after Close or Abort")
	}
	for i := range rows {
		if err := validate(&rows[i]); err != nil {
			return fmt.Errorf("writing row %d: %w", w.total, err)
		}
		if w.mode == modeDir && (w.pw == nil || (w.opts.ShardRows > 0 && w.rows >= w.opts.ShardRows)) {
			if w.pw != nil {
				if err := w.finishPart(); err != nil {
					return err
				}
			}
			if err := w.openTemp(w.tmpDir, PartName(w.parts)); err != nil {
				return err
			}
			w.startPart()
		}
		if _, err := w.pw.Write(rows[i : i+1]); err != nil {
			return err
		}
		w.rows++
		w.total++
		if w.mode == modeStdout && w.rows%int64(w.opts.RowGroupRows) == 0 {
			// A full row group has been written by parquet-go: push it down the pipe.
			if err := w.bw.Flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

// Rows returns the number of rows written so far.
func (w *Writer[T]) Rows() int64 { return w.total }

// Close finishes the output and moves it into place. On error the output is aborted.
func (w *Writer[T]) Close() error {
	if w.done {
		return nil
	}
	if err := w.close(); err != nil {
		w.Abort()
		return err
	}
	w.done = true
	return nil
}

func (w *Writer[T]) close() error {
	switch w.mode {
	case modeStdout:
		return w.finishPart()
	case modeFile:
		if err := w.finishPart(); err != nil {
			return err
		}
		if err := os.Rename(w.tmpName, w.final); err != nil {
			return err
		}
		w.tmpName = ""
		return syncDir(filepath.Dir(w.final))
	default:
		if w.pw == nil { // no rows: still write one empty part so readers see the schema
			if err := w.openTemp(w.tmpDir, PartName(0)); err != nil {
				return err
			}
			w.startPart()
		}
		if err := w.finishPart(); err != nil {
			return err
		}
		// Rename each temporary part to its final name inside the temporary directory.
		ents, err := os.ReadDir(w.tmpDir)
		if err != nil {
			return err
		}
		for _, e := range ents {
			n := e.Name()
			if i := strings.Index(n, ".tmp-"); strings.HasPrefix(n, ".") && i > 0 {
				if err := os.Rename(filepath.Join(w.tmpDir, n), filepath.Join(w.tmpDir, n[1:i])); err != nil {
					return err
				}
			}
		}
		if err := syncDir(w.tmpDir); err != nil {
			return err
		}
		return replaceDir(w.tmpDir, filepath.Clean(w.final))
	}
}

// replaceDir moves directory src to dst, replacing an existing dst: the old one is first moved
// aside, so dst is at all times either the complete old or the complete new directory.
func replaceDir(src, dst string) error {
	old := ""
	if _, err := os.Stat(dst); err == nil {
		old = dst + ".old-" + strconv.Itoa(os.Getpid())
		if err := os.Rename(dst, old); err != nil {
			return err
		}
	}
	if err := os.Rename(src, dst); err != nil {
		if old != "" {
			os.Rename(old, dst)
		}
		return err
	}
	if old != "" {
		os.RemoveAll(old)
	}
	return syncDir(filepath.Dir(dst))
}

// Abort discards the output: temporary files are removed and nothing appears under the final
// name. Output already sent to stdout cannot be taken back; readers reject the truncated stream.
func (w *Writer[T]) Abort() {
	if w.done {
		return
	}
	w.done = true
	if w.f != nil {
		w.f.Close()
		w.f = nil
	}
	if w.tmpName != "" && w.mode == modeFile {
		os.Remove(w.tmpName)
	}
	if w.tmpDir != "" {
		os.RemoveAll(w.tmpDir)
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	d.Sync() // not all file systems support syncing a directory; ignore that error
	return nil
}
