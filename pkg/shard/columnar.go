package shard

import (
	"fmt"
	"io"
	"reflect"
	"strings"

	"github.com/parquet-go/parquet-go"
)

// The columnar fast path reads a whole row group column by column, decoding list<int32> pages in
// bulk instead of value by value through parquet-go's generic reconstruction (which costs a
// reflective call per token). It serves every schema whose columns are flat scalars or lists of
// int32 (example, generation, judgment, score); candidates rows use the generic reader.

type colKind int

const (
	colString colKind = iota
	colInt32
	colInt64
	colFloat
	colDouble
	colListInt32
)

type colPlan struct {
	field  int // index of the struct field in T
	leaf   int // index of the leaf column in the file
	kind   colKind
	maxDef int
}

// columnarPlan maps T's fields onto f's leaf columns, or reports false when T (or the file) has
// a shape the fast path does not handle.
func columnarPlan[T Row](f *File) ([]colPlan, bool) {
	var zero T
	t := reflect.TypeOf(zero)
	cols := map[string]*parquet.Column{}
	for _, c := range f.PF.Root().Columns() {
		cols[c.Name()] = c
	}
	var plan []colPlan
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("parquet"), ",")
		c := cols[name]
		if c == nil {
			return nil, false
		}
		p := colPlan{field: i}
		switch sf.Type.Kind() {
		case reflect.String:
			p.kind = colString
		case reflect.Int32:
			p.kind = colInt32
		case reflect.Int64:
			p.kind = colInt64
		case reflect.Float32:
			p.kind = colFloat
		case reflect.Float64:
			p.kind = colDouble
		case reflect.Slice:
			if sf.Type.Elem().Kind() != reflect.Int32 {
				return nil, false
			}
			p.kind = colListInt32
			// LIST: <name> (group) → list (repeated group) → element (int32 leaf)
			if c.Leaf() || len(c.Columns()) != 1 || len(c.Columns()[0].Columns()) != 1 {
				return nil, false
			}
			c = c.Columns()[0].Columns()[0]
			if c.MaxRepetitionLevel() != 1 {
				return nil, false
			}
		default:
			return nil, false
		}
		if !c.Leaf() {
			return nil, false
		}
		if p.kind != colListInt32 && (c.MaxDefinitionLevel() != 0 || c.MaxRepetitionLevel() != 0) {
			return nil, false // optional or repeated scalars: not in our schemas
		}
		p.leaf, p.maxDef = c.Index(), c.MaxDefinitionLevel()
		plan = append(plan, p)
	}
	return plan, true
}

// readRowGroupColumnar decodes every row of rg into a new slice.
func readRowGroupColumnar[T Row](rg parquet.RowGroup, plan []colPlan) ([]T, error) {
	n := int(rg.NumRows())
	rows := make([]T, n)
	rv := reflect.ValueOf(rows)
	chunks := rg.ColumnChunks()
	for _, p := range plan {
		if err := readColumn(chunks[p.leaf], p, rv, n); err != nil {
			return nil, fmt.Errorf("column %d: %w", p.leaf, err)
		}
	}
	return rows, nil
}

func readColumn(cc parquet.ColumnChunk, p colPlan, rows reflect.Value, n int) error {
	pages := cc.Pages()
	defer pages.Close()
	row := 0  // scalars: next row to fill
	cur := -1 // lists: current row
	var buf []int32
	var start []int // lists: per row, offset into buf; filled lazily
	if p.kind == colListInt32 {
		start = make([]int, n+1)
		// The footer's value count sizes the buffer, bounded so that a corrupt footer cannot
		// make us allocate gigabytes up front (append grows it past the bound if needed).
		buf = make([]int32, 0, min(max(cc.NumValues(), 0), 1<<22))
	}
	empty := 0
	for {
		page, err := pages.ReadPage()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		// A corrupt page header can describe pages that hold nothing and never advance the
		// reader; a valid writer never emits more than a handful of empty pages in a row.
		if page.NumValues() == 0 {
			if empty++; empty > 64 {
				parquet.Release(page)
				return fmt.Errorf("corrupt column chunk: endless empty pages")
			}
		} else {
			empty = 0
		}
		data := page.Data()
		switch p.kind {
		case colListInt32:
			vals := data.Int32()
			rep, def := page.RepetitionLevels(), page.DefinitionLevels()
			vi := 0
			for li := range rep {
				if rep[li] == 0 {
					cur++
					if cur >= n {
						parquet.Release(page)
						return fmt.Errorf("more rows than the row group declares")
					}
					start[cur] = len(buf)
				}
				if int(def[li]) == p.maxDef {
					if vi >= len(vals) {
						parquet.Release(page)
						return fmt.Errorf("page has fewer values than levels")
					}
					buf = append(buf, vals[vi])
					vi++
				}
			}
		case colString:
			b, off := data.ByteArray()
			for i := 0; i+1 < len(off) && row < n; i++ {
				rows.Index(row).Field(p.field).SetString(string(b[off[i]:off[i+1]]))
				row++
			}
		case colInt32:
			for _, v := range data.Int32() {
				rows.Index(row).Field(p.field).SetInt(int64(v))
				row++
			}
		case colInt64:
			for _, v := range data.Int64() {
				rows.Index(row).Field(p.field).SetInt(v)
				row++
			}
		case colFloat:
			for _, v := range data.Float() {
				rows.Index(row).Field(p.field).SetFloat(float64(v))
				row++
			}
		case colDouble:
			for _, v := range data.Double() {
				rows.Index(row).Field(p.field).SetFloat(v)
				row++
			}
		}
		parquet.Release(page)
	}
	if p.kind == colListInt32 {
		if cur != n-1 {
			return fmt.Errorf("list column has %d rows, row group declares %d", cur+1, n)
		}
		start[n] = len(buf)
		// Rows share one backing array; the three-index slices keep an append from
		// overwriting the next row's ids.
		for r := 0; r < n; r++ {
			s := buf[start[r]:start[r+1]:start[r+1]]
			rows.Index(r).Field(p.field).Set(reflect.ValueOf(s))
		}
	} else if row != n {
		return fmt.Errorf("column has %d values, row group declares %d rows", row, n)
	}
	return nil
}
