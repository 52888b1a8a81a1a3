package shard

import (
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the generated tables of docs/shards.md")

const (
	docPath   = "../../docs/shards.md"
	beginMark = "<!-- BEGIN GENERATED TABLES -->\n"
	endMark   = "<!-- END GENERATED TABLES -->"
)

// TestDocs checks that docs/shards.md documents exactly the columns and types of the Go schemas.
func TestDocs(t *testing.T) {
	for _, s := range Schemas {
		cols, err := Columns(s.Name)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cols {
			if c.Doc == "" || c.Writer == "" {
				t.Errorf("column %s.%s has no documentation in columnDocs", s.Name, c.Name)
			}
		}
	}
	b, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i, j := strings.Index(doc, beginMark), strings.Index(doc, endMark)
	if i < 0 || j < i {
		t.Fatalf("%s lacks the generated-table markers", docPath)
	}
	want := doc[:i+len(beginMark)] + Markdown() + doc[j:]
	if *update {
		if err := os.WriteFile(docPath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if want != doc {
		t.Fatalf("%s is out of date with pkg/shard: run go test ./pkg/shard -run TestDocs -update", docPath)
	}
}
