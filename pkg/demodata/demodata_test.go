package demodata

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestGenerateIsDeterministicAndRight(t *testing.T) {
	a, b := Generate(7, 500), Generate(7, 500)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("row %d differs between runs with the same seed", i)
		}
	}
	seen := map[string]int{}
	plus := regexp.MustCompile(`^(\d+) plus (\d+) is (\d+)\.$`)
	for _, r := range a {
		seen[r.Category]++
		if r.Instruction == "" || r.Response == "" {
			t.Fatalf("empty row %+v", r)
		}
		if m := plus.FindStringSubmatch(r.Response); m != nil {
			x, _ := strconv.Atoi(m[1])
			y, _ := strconv.Atoi(m[2])
			z, _ := strconv.Atoi(m[3])
			if x+y != z {
				t.Fatalf("wrong sum in %q", r.Response)
			}
		}
		if r.Category == "closed_qa" && !strings.Contains(r.Context, r.Response) {
			t.Fatalf("closed_qa answer %q not in its passage %q", r.Response, r.Context)
		}
	}
	if len(seen) != len(Categories) {
		t.Fatalf("categories made: %v", seen)
	}
	if Generate(8, 5)[0] == a[0] && Generate(8, 5)[1] == a[1] {
		t.Fatal("seed does not change the data")
	}
}

func TestCorpus(t *testing.T) {
	c := Corpus(1, 50)
	if len(c) != 50 || strings.Count(c[0], ".") < 4 || strings.Contains(strings.Join(c, ""), "\n") {
		t.Fatalf("corpus paragraphs malformed: %q", c[0])
	}
}
