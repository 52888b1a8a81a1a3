package shard

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/parquet-go/parquet-go"
	"golang.org/x/sys/unix"
)

// StdinName is how standard input is named in messages and in Expand's result.
const StdinName = "-"

// Expand turns command-line arguments into an ordered list of shard files: a file is taken as
// is, a directory contributes its *.parquet files (not recursive, hidden and temporary files
// skipped, sorted by name), and a glob pattern its matches (sorted). No arguments, or "-", means
// standard input. A pattern that matches nothing or a directory without shards is an error.
func Expand(args []string) ([]string, error) {
	if len(args) == 0 {
		return []string{StdinName}, nil
	}
	var out []string
	for _, a := range args {
		if a == StdinName {
			out = append(out, a)
			continue
		}
		st, err := os.Stat(a)
		switch {
		case err == nil && st.IsDir():
			ents, err := os.ReadDir(a)
			if err != nil {
				return nil, err
			}
			n := 0
			for _, e := range ents {
				name := e.Name()
				if e.IsDir() || strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".parquet") {
					continue
				}
				out = append(out, filepath.Join(a, name))
				n++
			}
			if n == 0 {
				return nil, fmt.Errorf("%s: directory holds no .parquet shards", a)
			}
		case err == nil:
			out = append(out, a)
		case strings.ContainsAny(a, "*?["):
			m, gerr := filepath.Glob(a)
			if gerr != nil {
				return nil, fmt.Errorf("%s: %w", a, gerr)
			}
			if len(m) == 0 {
				return nil, fmt.Errorf("%s: pattern matches no file", a)
			}
			sort.Strings(m)
			out = append(out, m...)
		default:
			return nil, err
		}
	}
	return out, nil
}

// File is an open shard: the Parquet file, its schema, and where it came from.
type File struct {
	Name    string // the path, or "-" for standard input
	Schema  string // value of cpo.schema
	Version int    // value of cpo.schema_version
	PF      *parquet.File
	f       *os.File
}

// NumRows is the number of rows in the shard.
func (f *File) NumRows() int64 { return f.PF.NumRows() }

// Close releases the file.
func (f *File) Close() error {
	if f.f == nil {
		return nil
	}
	err := f.f.Close()
	f.f = nil
	return err
}

// Open opens one shard file (or "-", standard input read from stdin) and reads its schema
// metadata. Standard input is spooled to an unlinked temporary file first, because a Parquet
// footer sits at the end of the file.
func Open(name string, stdin io.Reader) (*File, error) {
	var f *os.File
	if name == StdinName {
		if stdin == nil {
			stdin = os.Stdin
		}
		if sf, ok := stdin.(*os.File); ok && IsTerminal(sf) {
			return nil, errors.New("no input: give shard files or directories, or pipe a shard into standard input")
		}
		tmp, err := os.CreateTemp("", "cpo-stdin-*.parquet")
		if err != nil {
			return nil, fmt.Errorf("stdin: spooling to a temporary file: %w", err)
		}
		os.Remove(tmp.Name()) // unlinked: vanishes when closed, whatever happens
		if _, err := io.Copy(tmp, stdin); err != nil {
			tmp.Close()
			return nil, fmt.Errorf("stdin: %w", err)
		}
		f = tmp
	} else {
		var err error
		if f, err = os.Open(name); err != nil {
			return nil, err
		}
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if st.Size() == 0 {
		f.Close()
		return nil, fmt.Errorf("%s: empty input, expected a Parquet shard", displayName(name))
	}
	// parquet-go allocates the footer length the file claims before reading it; check the claim
	// against the file's size first, so a corrupt 17-byte file cannot ask for gigabytes.
	if err := checkFooter(f, st.Size()); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: not a readable Parquet file (truncated or corrupt?): %w", displayName(name), err)
	}
	pf, err := parquet.OpenFile(f, st.Size(), parquet.SkipBloomFilters(true), parquet.SkipPageIndex(true))
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: not a readable Parquet file (truncated or corrupt?): %w", displayName(name), err)
	}
	sf := &File{Name: name, PF: pf, f: f}
	schema, ok := pf.Lookup(MetaSchema)
	if !ok {
		f.Close()
		return nil, fmt.Errorf("%s: not a cpo shard (no %q in the Parquet metadata)", displayName(name), MetaSchema)
	}
	sf.Schema = schema
	v, _ := pf.Lookup(MetaVersion)
	if sf.Version, err = strconv.Atoi(v); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: bad %s %q", displayName(name), MetaVersion, v)
	}
	return sf, nil
}

func displayName(name string) string {
	if name == StdinName {
		return "stdin"
	}
	spoolMu.Lock()
	defer spoolMu.Unlock()
	if spooled[name] {
		return "stdin"
	}
	return name
}

// spooled holds the temporary files that SpoolStdin made, so messages name them "stdin".
var (
	spoolMu sync.Mutex
	spooled = map[string]bool{}
)

// article is "an" before a vowel, else "a".
func article(w string) string {
	if w != "" && strings.ContainsRune("aeiou", rune(w[0])) {
		return "an"
	}
	return "a"
}

// check verifies that the file holds schema want.
func (f *File) check(want Info) error {
	if f.Schema != want.Name {
		return fmt.Errorf("%s: expected %s %s shard (v%d), found %s %s shard (v%d)", displayName(f.Name),
			article(want.Name), want.Name, want.Version, article(f.Schema), f.Schema, f.Version)
	}
	if f.Version > want.Version {
		return fmt.Errorf("%s: %s shard version %d is newer than this build understands (%d); upgrade the tools", displayName(f.Name), f.Schema, f.Version, want.Version)
	}
	if f.Version < 1 {
		return fmt.Errorf("%s: bad %s version %d", displayName(f.Name), f.Schema, f.Version)
	}
	return nil
}

// Reader reads rows of type T from a sequence of shards, in order, checking each file's schema
// when it is opened and each row's invariants as it is read. Errors name the file and row.
type Reader[T Row] struct {
	names []string
	stdin io.Reader
	next  int
	cur   *File
	gr    *parquet.GenericReader[T]
	row   int64 // index within the current file of the next row to return
	buf   []T
	bi    int
	err   error
	info  Info
	plan  []colPlan // columnar fast path for the current file, if it applies
	rg    int       // next row group (columnar path)
}

// noColumnar disables the columnar fast path (tests compare both paths).
var noColumnar = false

// NewReader reads the shards named by args (see Expand); stdin is used for "-" or no args.
func NewReader[T Row](args []string, stdin io.Reader) (*Reader[T], error) {
	names, err := Expand(args)
	if err != nil {
		return nil, err
	}
	return &Reader[T]{names: names, stdin: stdin, info: InfoOf[T]()}, nil
}

// Next returns the next row. At the end of the input it returns io.EOF; any other error names
// the file and row. A corrupt file that makes the Parquet decoder panic is reported as an
// error too.
func (r *Reader[T]) Next() (row T, err error) {
	defer func() {
		if p := recover(); p != nil {
			name, at := "input", r.row
			if r.cur != nil {
				name = displayName(r.cur.Name)
			}
			r.err = fmt.Errorf("%s row %d: corrupt Parquet data (%v)", name, at, p)
			row, err = *new(T), r.err
		}
	}()
	return r.nextRow()
}

func (r *Reader[T]) nextRow() (T, error) {
	var zero T
	for r.err == nil {
		if r.bi < len(r.buf) {
			row := r.buf[r.bi]
			r.buf[r.bi] = zero
			r.bi++
			r.row++
			if err := validate(&row); err != nil {
				r.err = fmt.Errorf("%s row %d: %w", displayName(r.cur.Name), r.row-1, err)
				return zero, r.err
			}
			return row, nil
		}
		if r.plan != nil {
			if r.rg >= len(r.cur.PF.RowGroups()) {
				r.closeCurrent()
				continue
			}
			rows, err := readRowGroupColumnar[T](r.cur.PF.RowGroups()[r.rg], r.plan)
			r.rg++
			if err != nil {
				r.err = fmt.Errorf("%s row %d: %w", displayName(r.cur.Name), r.row, err)
				return zero, r.err
			}
			r.buf, r.bi = rows, 0
			continue
		}
		if r.gr != nil {
			if r.buf == nil {
				r.buf = make([]T, 256)
			}
			r.buf = r.buf[:cap(r.buf)]
			n, err := r.gr.Read(r.buf)
			r.buf, r.bi = r.buf[:n], 0
			if n > 0 {
				continue
			}
			if err != nil && err != io.EOF {
				r.err = fmt.Errorf("%s row %d: %w", displayName(r.cur.Name), r.row, err)
				return zero, r.err
			}
			r.closeCurrent()
			continue
		}
		if r.next >= len(r.names) {
			r.err = io.EOF
			break
		}
		f, err := Open(r.names[r.next], r.stdin)
		r.next++
		if err != nil {
			r.err = err
			break
		}
		if err := f.check(r.info); err != nil {
			f.Close()
			r.err = err
			break
		}
		r.cur, r.row, r.rg = f, 0, 0
		if plan, ok := columnarPlan[T](f); ok && !noColumnar {
			r.plan = plan
		} else {
			r.gr = parquet.NewGenericReader[T](f.PF)
		}
	}
	return zero, r.err
}

// Pos returns the file name and row index of the row most recently returned by Next.
func (r *Reader[T]) Pos() (string, int64) {
	if r.cur == nil {
		return "", 0
	}
	return displayName(r.cur.Name), r.row - 1
}

func (r *Reader[T]) closeCurrent() {
	r.plan = nil
	if r.gr != nil {
		r.gr.Close()
		r.gr = nil
	}
	if r.cur != nil {
		r.cur.Close()
	}
}

// Close releases the open file, if any.
func (r *Reader[T]) Close() error {
	r.closeCurrent()
	if r.err == nil {
		r.err = errors.New("reader closed")
	}
	return nil
}

// ReadAll reads every row of the shards named by args.
func ReadAll[T Row](args []string, stdin io.Reader) ([]T, error) {
	r, err := NewReader[T](args, stdin)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var rows []T
	for {
		row, err := r.Next()
		if err == io.EOF {
			return rows, nil
		}
		if err != nil {
			return nil, err
		}
		rows = append(rows, row)
	}
}

// Each calls fn for every row of the shards named by args, stopping at the first error. An
// error returned by fn is wrapped with the file and row.
func Each[T Row](args []string, stdin io.Reader, fn func(row T) error) error {
	r, err := NewReader[T](args, stdin)
	if err != nil {
		return err
	}
	defer r.Close()
	for {
		row, err := r.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(row); err != nil {
			name, i := r.Pos()
			return fmt.Errorf("%s row %d: %w", name, i, err)
		}
	}
}

// SpoolStdin replaces standard input among args (no args, or "-") by a temporary file holding
// what stdin carried, so that the input can be read more than once (to detect its schema, or in
// two passes). cleanup removes the file.
func SpoolStdin(args []string, stdin io.Reader) (out []string, cleanup func(), err error) {
	cleanup = func() {}
	if len(args) == 0 {
		args = []string{StdinName}
	}
	for i, a := range args {
		if a != StdinName {
			continue
		}
		if stdin == nil {
			stdin = os.Stdin
		}
		if sf, ok := stdin.(*os.File); ok && IsTerminal(sf) {
			return nil, cleanup, errors.New("no input: give shard files or directories, or pipe a shard into standard input")
		}
		tmp, err := os.CreateTemp("", "cpo-stdin-*.parquet")
		if err != nil {
			return nil, cleanup, fmt.Errorf("stdin: spooling to a temporary file: %w", err)
		}
		spoolMu.Lock()
		spooled[tmp.Name()] = true
		spoolMu.Unlock()
		cleanup = func() {
			os.Remove(tmp.Name())
			spoolMu.Lock()
			delete(spooled, tmp.Name())
			spoolMu.Unlock()
		}
		_, err = io.Copy(tmp, stdin)
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			cleanup()
			return nil, func() {}, fmt.Errorf("stdin: %w", err)
		}
		out = append(append(append([]string{}, args[:i]...), tmp.Name()), args[i+1:]...)
		return out, cleanup, nil
	}
	return args, cleanup, nil
}

// DetectSchema returns the schema name of the first shard named by args (after Expand).
func DetectSchema(args []string) (string, error) {
	names, err := Expand(args)
	if err != nil {
		return "", err
	}
	if names[0] == StdinName {
		return "", errors.New("DetectSchema: spool standard input first (SpoolStdin)")
	}
	f, err := Open(names[0], nil)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, ok := LookupInfo(f.Schema); !ok {
		return "", fmt.Errorf("%s: unknown schema %q", names[0], f.Schema)
	}
	return f.Schema, nil
}

// IsTerminal reports whether f is a terminal (not merely a character device such as /dev/null).
func IsTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// CountRows returns the total number of rows of the shards named by args, read from the Parquet
// footers only (standard input cannot be counted without consuming it: spool it first).
func CountRows(args []string) (int64, error) {
	names, err := Expand(args)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, name := range names {
		if name == StdinName {
			return 0, errors.New("CountRows: spool standard input first (SpoolStdin)")
		}
		f, err := Open(name, nil)
		if err != nil {
			return 0, err
		}
		n += f.NumRows()
		f.Close()
	}
	return n, nil
}

// checkFooter verifies the Parquet trailer: the file ends in a 4-byte footer length and "PAR1",
// starts with "PAR1", and the footer fits between them.
func checkFooter(r io.ReaderAt, size int64) error {
	if size < 12 {
		return fmt.Errorf("%d bytes is too short for a Parquet file", size)
	}
	var head, tail [8]byte
	if _, err := r.ReadAt(head[:4], 0); err != nil {
		return err
	}
	if _, err := r.ReadAt(tail[:], size-8); err != nil {
		return err
	}
	if string(head[:4]) != "PAR1" || string(tail[4:]) != "PAR1" {
		return errors.New("no PAR1 magic at both ends")
	}
	if n := int64(binary.LittleEndian.Uint32(tail[:4])); n > size-12 {
		return fmt.Errorf("footer of %d bytes claimed in a file of %d bytes", n, size)
	}
	return nil
}
