// Package prep turns the data sets users bring into tokenized examples (shard.Example):
// Dolly JSONL with a prompt template, generic JSONL or Parquet with chosen prompt and
// response fields, and plain text documents split into a prefix (the first PrefixFrac of
// the tokens) and its continuation, as in the paper's Wikipedia task. It applies the
// length limits, a seeded train/test split and EOS, in parallel, and reports what it
// skipped, truncated or dropped. cpo-tokenize is its command-line front end.
package prep

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/template"
	"unicode/utf8"

	"github.com/parquet-go/parquet-go"
)

// Formats of input.
const (
	FormatDolly   = "dolly"   // JSONL rows with instruction, context, response, category
	FormatJSONL   = "jsonl"   // JSONL rows with chosen prompt and response fields
	FormatParquet = "parquet" // Parquet rows with chosen prompt and response fields
	FormatText    = "text"    // plain text documents, split by tokens into prefix and continuation
)

// DefaultDollyTemplate is the prompt of a Dolly row: the instruction-following format
// that Databricks trained Dolly with (intro, "### Instruction:", an "Input:" section when
// the row has a context, "### Response:"). The response follows it directly. Fields are
// those of the row: .instruction, .context, .category, .response.
const DefaultDollyTemplate = `Below is an instruction that describes a task. Write a response that appropriately completes the request.

### Instruction:
{{.instruction}}

{{if .context}}Input:
{{.context}}

{{end}}### Response:
`

// Record is one raw example before tokenization. For text documents Prompt is the whole
// document and Response is empty.
type Record struct {
	ID       string
	Prompt   string
	Response string
	File     string // where it came from, for errors
	Line     int    // 1-based line (JSONL, text) or row (Parquet) number
}

// BadRecordError is an input row that cannot become an example; with SkipBad it is
// counted under Reason instead of stopping the run.
type BadRecordError struct {
	File   string
	Line   int
	Reason string // short class: "invalid UTF-8", "missing field", ...
	Detail string
}

// Error names the file and line.
func (e *BadRecordError) Error() string {
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Detail)
}

// ReadOptions say how to read the inputs.
type ReadOptions struct {
	Format        string
	Template      *template.Template // prompt template; nil: Dolly's default or the prompt field
	PromptField   string             // jsonl, parquet: the prompt (when Template is nil)
	ResponseField string             // jsonl, parquet: the response
	IDField       string             // optional id field; default: <source>-<row index>
	DocPerLine    bool               // text: one document per line (else one per file)
	SkipBad       bool
}

// Reader collects records from input files: into Records, or, when Emit is set, by handing
// each record to Emit as it is read (Records stays empty; an error from Emit stops the read).
type Reader struct {
	Opts    ReadOptions
	Records []Record
	Skipped map[string]int // by reason
	Emit    func(Record) error
}

// add keeps or emits one record.
func (r *Reader) add(rec Record) error {
	if r.Emit != nil {
		return r.Emit(rec)
	}
	r.Records = append(r.Records, rec)
	return nil
}

// NewReader returns a reader; ParseTemplate its template first when one is given.
func NewReader(o ReadOptions) (*Reader, error) {
	if o.Format == FormatDolly && o.Template == nil {
		t, err := ParseTemplate("dolly default", DefaultDollyTemplate)
		if err != nil {
			return nil, err
		}
		o.Template = t
	}
	if o.Format == FormatDolly {
		o.ResponseField = "response"
	}
	if (o.Format == FormatJSONL || o.Format == FormatParquet) && (o.ResponseField == "" || (o.PromptField == "" && o.Template == nil)) {
		return nil, errors.New("jsonl and parquet inputs need a response field and a prompt field or template")
	}
	switch o.Format {
	case FormatDolly, FormatJSONL, FormatParquet, FormatText:
	default:
		return nil, fmt.Errorf("unknown input format %q (want dolly, jsonl, parquet or text)", o.Format)
	}
	return &Reader{Opts: o, Skipped: map[string]int{}}, nil
}

// ParseTemplate parses a prompt template (Go text/template; fields of the row as .name,
// missing fields empty).
func ParseTemplate(name, text string) (*template.Template, error) {
	t, err := template.New(name).Option("missingkey=zero").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("prompt template %s: %w", name, err)
	}
	return t, nil
}

// bad records a bad row: an error, or a count with SkipBad.
func (r *Reader) bad(file string, line int, reason, format string, a ...any) error {
	e := &BadRecordError{File: file, Line: line, Reason: reason, Detail: fmt.Sprintf(format, a...)}
	if r.Opts.SkipBad {
		r.Skipped[reason]++
		return nil
	}
	return e
}

// ReadFile reads one input; name "-" is standard input (not for Parquet).
func (r *Reader) ReadFile(name string, stdin io.Reader) error {
	var in io.Reader = stdin
	display := "<stdin>"
	if name != "-" {
		display = name
		if r.Opts.Format == FormatParquet {
			return r.readParquet(name)
		}
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	} else if r.Opts.Format == FormatParquet {
		return errors.New("parquet input must be a file, not standard input")
	}
	return r.ReadStream(display, in)
}

// ReadStream reads one JSONL, Dolly or text input from in, naming it display in errors.
func (r *Reader) ReadStream(display string, in io.Reader) error {
	if r.Opts.Format == FormatParquet {
		return fmt.Errorf("%s: parquet input must be a file", display)
	}
	// A UTF-8 byte order mark (Windows editors) marks the file, not its first row or document.
	br := bufio.NewReaderSize(in, 1<<20)
	if b, _ := br.Peek(3); string(b) == "\xef\xbb\xbf" {
		br.Discard(3)
	}
	in = br
	if r.Opts.Format == FormatText {
		return r.readText(display, in)
	}
	return r.readJSONL(display, in)
}

func (r *Reader) readText(name string, in io.Reader) error {
	if !r.Opts.DocPerLine {
		data, err := io.ReadAll(in)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if !utf8.Valid(data) {
			line := 1 + bytes.Count(data[:firstInvalid(data)], []byte("\n"))
			return r.bad(name, line, "invalid UTF-8", "invalid UTF-8")
		}
		if len(bytes.TrimSpace(data)) == 0 {
			return r.bad(name, 1, "empty document", "empty document")
		}
		return r.add(Record{Prompt: string(data), File: name, Line: 1})
	}
	br := bufio.NewReaderSize(in, 1<<20)
	for line := 1; ; line++ {
		s, err := br.ReadString('\n')
		if len(s) > 0 {
			s = strings.TrimSuffix(strings.TrimSuffix(s, "\n"), "\r")
			switch {
			case !utf8.ValidString(s):
				if e := r.bad(name, line, "invalid UTF-8", "invalid UTF-8"); e != nil {
					return e
				}
			case strings.TrimSpace(s) == "":
				// blank lines separate nothing: skipped silently as they hold no document
			default:
				if e := r.add(Record{Prompt: s, File: name, Line: line}); e != nil {
					return e
				}
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s:%d: %w", name, line, err)
		}
	}
}

func firstInvalid(b []byte) int {
	for i := 0; i < len(b); {
		r, w := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && w == 1 {
			return i
		}
		i += w
	}
	return len(b)
}

func (r *Reader) readJSONL(name string, in io.Reader) error {
	br := bufio.NewReaderSize(in, 1<<20)
	for line := 1; ; line++ {
		s, err := br.ReadBytes('\n')
		if t := bytes.TrimSpace(s); len(t) > 0 {
			if e := r.jsonRow(name, line, t); e != nil {
				return e
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s:%d: %w", name, line, err)
		}
	}
}

func (r *Reader) jsonRow(name string, line int, b []byte) error {
	if !utf8.Valid(b) {
		return r.bad(name, line, "invalid UTF-8", "invalid UTF-8")
	}
	var row map[string]any
	if err := json.Unmarshal(b, &row); err != nil {
		return r.bad(name, line, "not a JSON object", "not a JSON object: %v", err)
	}
	fields := make(map[string]string, len(row))
	for k, v := range row {
		if s, ok := v.(string); ok {
			fields[k] = s
		}
	}
	check := func(field string) error {
		v, ok := row[field]
		switch {
		case !ok || v == nil:
			return r.bad(name, line, "missing field", "field %q is missing", field)
		default:
			if _, ok := v.(string); !ok {
				return r.bad(name, line, "non-string field", "field %q is a %s, not a string", field, jsonType(v))
			}
		}
		return nil
	}
	need := []string{r.Opts.ResponseField}
	if r.Opts.Format == FormatDolly {
		need = []string{"instruction", "response"}
	} else if r.Opts.Template == nil {
		need = append(need, r.Opts.PromptField)
	}
	if r.Opts.IDField != "" {
		need = append(need, r.Opts.IDField)
	}
	before := r.skippedTotal()
	for _, f := range need {
		if err := check(f); err != nil {
			return err
		}
		if r.skippedTotal() != before {
			return nil
		}
	}
	return r.addRecord(name, line, fields)
}

func (r *Reader) skippedTotal() int {
	n := 0
	for _, c := range r.Skipped {
		n += c
	}
	return n
}

func jsonType(v any) string {
	switch v.(type) {
	case float64:
		return "number"
	case bool:
		return "boolean"
	case []any:
		return "list"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// addRecord builds the prompt of a row from its string fields.
func (r *Reader) addRecord(name string, line int, fields map[string]string) error {
	resp := fields[r.Opts.ResponseField]
	if strings.TrimSpace(resp) == "" {
		return r.bad(name, line, "empty response", "field %q is empty", r.Opts.ResponseField)
	}
	var prompt string
	if r.Opts.Template != nil {
		var sb strings.Builder
		if err := r.Opts.Template.Execute(&sb, fields); err != nil {
			return r.bad(name, line, "template error", "prompt template: %v", err)
		}
		prompt = sb.String()
	} else {
		prompt = fields[r.Opts.PromptField]
	}
	rec := Record{Prompt: prompt, Response: resp, File: name, Line: line}
	if r.Opts.IDField != "" {
		rec.ID = fields[r.Opts.IDField]
	}
	return r.add(rec)
}

// readParquet reads the string columns of a generic Parquet file.
func (r *Reader) readParquet(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		return fmt.Errorf("%s: not a readable Parquet file: %w", name, err)
	}
	// Leaf columns that are top-level strings, by column index.
	cols := map[int]string{}
	for _, fld := range pf.Schema().Fields() {
		if fld.Leaf() && fld.Type().Kind() == parquet.ByteArray {
			cols[columnIndex(pf.Schema(), fld.Name())] = fld.Name()
		}
	}
	want := []string{r.Opts.ResponseField}
	if r.Opts.Template == nil {
		want = append(want, r.Opts.PromptField)
	}
	if r.Opts.IDField != "" {
		want = append(want, r.Opts.IDField)
	}
	for _, w := range want {
		found := false
		for _, c := range cols {
			found = found || c == w
		}
		if !found {
			return fmt.Errorf("%s: no top-level string column %q", name, w)
		}
	}
	pr := parquet.NewReader(pf)
	defer pr.Close()
	rows := make([]parquet.Row, 256)
	line := 0
	for {
		n, err := pr.ReadRows(rows)
		for _, row := range rows[:n] {
			line++
			fields := map[string]string{}
			for _, v := range row {
				if c, ok := cols[v.Column()]; ok && !v.IsNull() {
					fields[c] = string(v.ByteArray())
				}
			}
			missing := ""
			for _, w := range want {
				if _, ok := fields[w]; !ok {
					missing = w
				}
			}
			if missing != "" {
				if e := r.bad(name, line, "missing field", "column %q is null", missing); e != nil {
					return e
				}
				continue
			}
			bad := false
			for _, v := range fields {
				bad = bad || !utf8.ValidString(v)
			}
			if bad {
				if e := r.bad(name, line, "invalid UTF-8", "invalid UTF-8"); e != nil {
					return e
				}
				continue
			}
			if e := r.addRecord(name, line, fields); e != nil {
				return e
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: row %d: %w", name, line+1, err)
		}
	}
}

// columnIndex returns the leaf column index of the top-level field name.
func columnIndex(s *parquet.Schema, name string) int {
	leaf, ok := s.Lookup(name)
	if !ok {
		return -1
	}
	return leaf.ColumnIndex
}
