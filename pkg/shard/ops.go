package shard

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand"
	"reflect"
	"sort"
	"strings"
)

// Ops are the schema-independent operations of the shard inspector (cpo-shard), bound to one
// schema. Get one with OpsFor.
type Ops interface {
	Info() Info
	// Copy reads args (see Expand) and writes the rows for which keep(i) is true, i counting all
	// input rows from 0, to out. It returns the number of rows written.
	Copy(args []string, stdin io.Reader, out string, stdout io.Writer, o Options, keep func(i int64) bool) (int64, error)
	// Filter writes the rows whose string column equals value (e.g. split = test).
	Filter(args []string, stdin io.Reader, out string, stdout io.Writer, o Options, column, value string) (int64, error)
	// Sample writes a seeded uniform sample of n rows (reservoir sampling, input order kept).
	Sample(args []string, stdin io.Reader, out string, stdout io.Writer, o Options, n int, seed int64) (int64, error)
	// Split writes the input into n shards of nearly equal rows, part-00000.parquet ... in dir.
	Split(args []string, stdin io.Reader, dir string, o Options, n int) error
	// ToJSONL writes up to limit rows (all if limit < 0) as JSON lines (indented if pretty).
	ToJSONL(args []string, stdin io.Reader, w io.Writer, limit int64, pretty bool) error
	// FromJSONL reads JSON lines and writes shards; name is used in error messages.
	FromJSONL(r io.Reader, name string, out string, stdout io.Writer, o Options) (int64, error)
	// Stats counts rows and tokens and makes a histogram of tokens per row.
	Stats(args []string, stdin io.Reader) (Stats, error)
}

// OpsFor returns the operations of the named schema.
func OpsFor(schema string) (Ops, error) {
	switch schema {
	case "example":
		return ops[Example]{}, nil
	case "candidates":
		return ops[Candidates]{}, nil
	case "generation":
		return ops[Generation]{}, nil
	case "judgment":
		return ops[Judgment]{}, nil
	case "score":
		return ops[Score]{}, nil
	}
	return nil, fmt.Errorf("unknown schema %q (known: example, candidates, generation, judgment, score)", schema)
}

type ops[T Row] struct{}

func (ops[T]) Info() Info { return InfoOf[T]() }

func (ops[T]) Copy(args []string, stdin io.Reader, out string, stdout io.Writer, o Options, keep func(int64) bool) (int64, error) {
	w, err := NewWriter[T](out, stdout, o)
	if err != nil {
		return 0, err
	}
	var i int64
	err = Each(args, stdin, func(row T) error {
		defer func() { i++ }()
		if keep == nil || keep(i) {
			return w.Write(row)
		}
		return nil
	})
	if err != nil {
		w.Abort()
		return 0, err
	}
	return w.Rows(), w.Close()
}

func (ops[T]) Filter(args []string, stdin io.Reader, out string, stdout io.Writer, o Options, column, value string) (int64, error) {
	field := -1
	var zero T
	t := reflect.TypeOf(zero)
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("parquet"), ",")
		if name == column && t.Field(i).Type.Kind() == reflect.String {
			field = i
		}
	}
	if field < 0 {
		return 0, fmt.Errorf("schema %s has no string column %q", InfoOf[T]().Name, column)
	}
	w, err := NewWriter[T](out, stdout, o)
	if err != nil {
		return 0, err
	}
	err = Each(args, stdin, func(row T) error {
		if reflect.ValueOf(&row).Elem().Field(field).String() == value {
			return w.Write(row)
		}
		return nil
	})
	if err != nil {
		w.Abort()
		return 0, err
	}
	return w.Rows(), w.Close()
}

func (op ops[T]) Sample(args []string, stdin io.Reader, out string, stdout io.Writer, o Options, n int, seed int64) (int64, error) {
	// Two passes: a reservoir of row indices, then a copy of those rows in input order.
	if n < 0 {
		return 0, fmt.Errorf("sample size %d < 0", n)
	}
	args, cleanup, err := SpoolStdin(args, stdin)
	if err != nil {
		return 0, err
	}
	defer cleanup()
	rng := rand.New(rand.NewSource(seed))
	res := make([]int64, 0, n)
	var i int64
	if err := Each(args, nil, func(T) error { reservoir(&res, n, i, rng); i++; return nil }); err != nil {
		return 0, err
	}
	sort.Slice(res, func(a, b int) bool { return res[a] < res[b] })
	keep := func(j int64) bool {
		k := sort.Search(len(res), func(x int) bool { return res[x] >= j })
		return k < len(res) && res[k] == j
	}
	return op.Copy(args, nil, out, stdout, o, keep)
}

func reservoir(res *[]int64, n int, i int64, rng *rand.Rand) {
	if len(*res) < n {
		*res = append(*res, i)
		return
	}
	if j := rng.Int63n(i + 1); j < int64(n) {
		(*res)[j] = i
	}
}

func (op ops[T]) Split(args []string, stdin io.Reader, dir string, o Options, n int) error {
	if n <= 0 {
		return fmt.Errorf("number of shards %d must be positive", n)
	}
	rows, err := ReadAll[T](args, stdin)
	if err != nil {
		return err
	}
	o.ShardRows = int64((len(rows) + n - 1) / n)
	if o.ShardRows == 0 {
		o.ShardRows = 1
	}
	w, err := NewWriter[T](dir, nil, o)
	if err != nil {
		return err
	}
	if err := w.Write(rows...); err != nil {
		w.Abort()
		return err
	}
	return w.Close()
}

func (ops[T]) ToJSONL(args []string, stdin io.Reader, w io.Writer, limit int64, pretty bool) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	if pretty {
		enc.SetIndent("", "  ")
	}
	var n int64
	r, err := NewReader[T](args, stdin)
	if err != nil {
		return err
	}
	defer r.Close()
	for limit < 0 || n < limit {
		row, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if err := enc.Encode(row); err != nil {
			return err
		}
		n++
	}
	return bw.Flush()
}

func (op ops[T]) FromJSONL(r io.Reader, name string, out string, stdout io.Writer, o Options) (int64, error) {
	info := op.Info()
	w, err := NewWriter[T](out, stdout, o)
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<30)
	line := 0
	fail := func(err error) (int64, error) {
		w.Abort()
		return 0, fmt.Errorf("%s line %d: %w", name, line, err)
	}
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var keys map[string]json.RawMessage
		if err := json.Unmarshal(b, &keys); err != nil {
			return fail(fmt.Errorf("not a JSON object: %v", err))
		}
		for _, k := range info.Required {
			if v, ok := keys[k]; !ok || string(v) == "null" {
				return fail(fmt.Errorf("missing required field %q", k))
			}
		}
		var row T
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&row); err != nil {
			return fail(err)
		}
		if err := w.Write(row); err != nil {
			return fail(err)
		}
	}
	if err := sc.Err(); err != nil {
		return fail(err)
	}
	if w.Rows() == 0 {
		w.Abort()
		return 0, fmt.Errorf("%s: no rows", name)
	}
	return w.Rows(), w.Close()
}

// Stats summarises a set of shards.
type Stats struct {
	Schema string `json:"schema"`
	Rows   int64  `json:"rows"`
	// Tokens counts every token id in the rows' id columns; PromptTokens and ResponseTokens split
	// them where the schema has a prompt (ResponseTokens holds the continuations: response,
	// candidates or generated ids).
	Tokens         int64 `json:"tokens"`
	PromptTokens   int64 `json:"prompt_tokens"`
	ResponseTokens int64 `json:"response_tokens"`
	MinLen         int64 `json:"min_len"`
	MaxLen         int64 `json:"max_len"`
	// Histogram of tokens per row: Hist[i] counts rows with length in [Edges[i], Edges[i+1]).
	Edges []int64 `json:"edges"`
	Hist  []int64 `json:"hist"`
}

func tokensOf(row any) (prompt, rest int64) {
	switch r := row.(type) {
	case Example:
		return int64(len(r.PromptIDs)), int64(len(r.ResponseIDs))
	case Candidates:
		for _, c := range r.Candidates {
			rest += int64(len(c.IDs))
		}
		return int64(len(r.PromptIDs)), rest
	case Generation:
		return int64(len(r.PromptIDs)), int64(len(r.IDs))
	}
	return 0, 0
}

func (op ops[T]) Stats(args []string, stdin io.Reader) (Stats, error) {
	st := Stats{Schema: op.Info().Name, MinLen: -1}
	st.Edges = []int64{0, 1}
	for e := int64(2); e <= 1<<20; e *= 2 {
		st.Edges = append(st.Edges, e)
	}
	st.Edges = append(st.Edges, math.MaxInt64)
	st.Hist = make([]int64, len(st.Edges)-1)
	err := Each(args, stdin, func(row T) error {
		p, r := tokensOf(row)
		n := p + r
		st.Rows++
		st.PromptTokens += p
		st.ResponseTokens += r
		st.Tokens += n
		if st.MinLen < 0 || n < st.MinLen {
			st.MinLen = n
		}
		st.MaxLen = max(st.MaxLen, n)
		b := sort.Search(len(st.Edges), func(i int) bool { return st.Edges[i] > n }) - 1
		st.Hist[b]++
		return nil
	})
	if st.MinLen < 0 {
		st.MinLen = 0
	}
	// Trim empty buckets at the top.
	last := 0
	for i, h := range st.Hist {
		if h > 0 {
			last = i
		}
	}
	st.Hist, st.Edges = st.Hist[:last+1], st.Edges[:last+2]
	return st, err
}
