package prep

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
)

type qaRow struct {
	Q  string  `parquet:"q"`
	A  *string `parquet:"a,optional"`
	ID int64   `parquet:"n"`
}

func TestParquetInput(t *testing.T) {
	p := filepath.Join(t.TempDir(), "qa.parquet")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	ans := "an answer"
	w := parquet.NewGenericWriter[qaRow](f)
	if _, err := w.Write([]qaRow{{Q: "first?", A: &ans, ID: 1}, {Q: "second?", A: nil, ID: 2}, {Q: "third?", A: &ans, ID: 3}}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	r, err := NewReader(ReadOptions{Format: FormatParquet, PromptField: "q", ResponseField: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.ReadFile(p, nil); err == nil || !strings.Contains(err.Error(), "qa.parquet:2:") {
		t.Fatalf("null response: error %v", err)
	}
	r, _ = NewReader(ReadOptions{Format: FormatParquet, PromptField: "q", ResponseField: "a", SkipBad: true})
	if err := r.ReadFile(p, nil); err != nil {
		t.Fatal(err)
	}
	if len(r.Records) != 2 || r.Records[1].Prompt != "third?" || r.Records[1].Response != ans || r.Skipped["missing field"] != 1 {
		t.Fatalf("%+v %v", r.Records, r.Skipped)
	}
	r, _ = NewReader(ReadOptions{Format: FormatParquet, PromptField: "nope", ResponseField: "a"})
	if err := r.ReadFile(p, nil); err == nil || !strings.Contains(err.Error(), `no top-level string column "nope"`) {
		t.Fatalf("missing column: %v", err)
	}
}

// --id-field names a column that must exist, as in JSONL: a missing or non-string id column is
// an error, not silently replaced by generated ids.
func TestParquetIDField(t *testing.T) {
	p := filepath.Join(t.TempDir(), "qa.parquet")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	ans := "an answer"
	w := parquet.NewGenericWriter[qaRow](f)
	if _, err := w.Write([]qaRow{{Q: "first?", A: &ans, ID: 1}}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for _, id := range []string{"n", "uid"} {
		r, _ := NewReader(ReadOptions{Format: FormatParquet, PromptField: "q", ResponseField: "a", IDField: id})
		if err := r.ReadFile(p, nil); err == nil || !strings.Contains(err.Error(), `"`+id+`"`) {
			t.Errorf("--id-field %s: %v, records %+v", id, err, r.Records)
		}
	}
	r, _ := NewReader(ReadOptions{Format: FormatParquet, PromptField: "a", ResponseField: "a", IDField: "q"})
	if err := r.ReadFile(p, nil); err != nil || len(r.Records) != 1 || r.Records[0].ID != "first?" {
		t.Fatalf("string id column: %v %+v", err, r.Records)
	}
}
