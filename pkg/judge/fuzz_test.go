package judge

import (
	"strings"
	"testing"
)

// FuzzTemplate: any template text either fails Check or renders, with every value inserted
// verbatim; ParseVerdict never panics and only returns the four verdicts' parse results.
func FuzzTemplate(f *testing.F) {
	f.Add(Dolly.Text, "q", "a", "b")
	f.Add("{query}{{x}}{response_a}}}{response_b}", "{", "}", "{query}")
	f.Add("{query} {response_a}", "", "", "")
	f.Fuzz(func(t *testing.T, text, q, a, b string) {
		tpl := Template{Name: "fuzz", Text: text}
		out, err := tpl.Render(q, a, b)
		if (err == nil) != (tpl.Check() == nil) {
			t.Fatalf("Render and Check disagree on %q", text)
		}
		if err == nil && (!strings.Contains(out, q) || !strings.Contains(out, a) || !strings.Contains(out, b)) {
			t.Fatalf("a value is missing from %q", out)
		}
		if v := ParseVerdict(q); v != VerdictA && v != VerdictB && v != VerdictUnparsed {
			t.Fatalf("ParseVerdict(%q) = %q", q, v)
		}
	})
}
