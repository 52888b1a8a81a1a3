// Package judge asks a judge which of two responses to a prompt is better — a generated one
// or the ground truth — in both presentation orders, and turns the two verdicts into a
// judgment row (shard.Judgment): the generation wins when preferred in both orders, loses
// when preferred in neither, and ties when the orders disagree (position bias cancels out).
//
// Two judges: Remote, any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM,
// llama.cpp's server, Ollama), with bounded concurrency, retries with exponential backoff and
// jitter, Retry-After, a circuit breaker on an unreachable endpoint and a persistent answer
// Cache; and Likelihood, an offline judge that prefers the response with the higher
// length-normalised log-probability under a local model.
package judge

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
)

// Placeholders of a template. Each must appear at least once; "{{" and "}}" stand for literal
// braces; any other {name} is an error.
const (
	PhQuery     = "{query}"      // the prompt (the instruction, or the prefix to continue)
	PhResponseA = "{response_a}" // the response shown first, as "A"
	PhResponseB = "{response_b}" // the response shown second, as "B"
)

// Template is a judge prompt with the placeholders {query}, {response_a} and {response_b}.
type Template struct {
	Name string
	Text string
}

// The paper's templates, word for word (section 5 for Dolly, appendix A.2 for Wikipedia),
// with the paper's "{}" slots named. "\n " is a newline followed by a space, as printed.
var (
	Dolly = Template{Name: "dolly", Text: "For the following query to a chatbot, which response is more helpful?\n Query: {query}\n Response A: {response_a}\n Response B: {response_b}\n State only \"A\" or \"B\" to indicate which response is more helpful.\n More helpful:"}
	Wiki  = Template{Name: "wiki", Text: "For the following prefix, which continuation is better?\n Prefix: {query}\n Continuation A: {response_a}\n Continuation B: {response_b}\n State only \"A\" or \"B\" to indicate which continuation is more helpful.\n Better:"}
)

// Builtin returns the built-in template of that name (dolly or wiki).
func Builtin(name string) (Template, bool) {
	switch name {
	case "dolly":
		return Dolly, true
	case "wiki":
		return Wiki, true
	}
	return Template{}, false
}

// LoadTemplate returns the built-in template named arg, or else reads the template from the
// file arg (named by the file's path) and checks it.
func LoadTemplate(arg string) (Template, error) {
	if t, ok := Builtin(arg); ok {
		return t, nil
	}
	b, err := os.ReadFile(arg)
	if err != nil {
		return Template{}, fmt.Errorf("template %q is neither dolly, wiki nor a readable file: %w", arg, err)
	}
	t := Template{Name: arg, Text: string(b)}
	if err := t.Check(); err != nil {
		return Template{}, err
	}
	return t, nil
}

// Check reports a missing placeholder, an unknown {name} or an unbalanced brace.
func (t Template) Check() error {
	_, err := t.render("", "", "", true)
	return err
}

// ID names the template with the first 12 hex digits of the SHA-256 of its text, e.g.
// "dolly:1a2b3c4d5e6f"; it goes into judgments.
func (t Template) ID() string {
	return t.Name + ":" + t.Hash()
}

// Hash is the first 12 hex digits of the SHA-256 of the template's text: what identifies the
// template in cache keys, whatever it is called or where its file lies.
func (t Template) Hash() string {
	h := sha256.Sum256([]byte(t.Text))
	return hex.EncodeToString(h[:6])
}

// Render fills the placeholders. The values are inserted as they are (they are never
// scanned for placeholders themselves).
func (t Template) Render(query, a, b string) (string, error) {
	return t.render(query, a, b, false)
}

func (t Template) render(query, a, b string, check bool) (string, error) {
	var out strings.Builder
	seen := map[string]bool{}
	s := t.Text
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "{{"):
			out.WriteByte('{')
			i += 2
		case strings.HasPrefix(s[i:], "}}"):
			out.WriteByte('}')
			i += 2
		case s[i] == '{':
			j := strings.IndexByte(s[i:], '}')
			if j < 0 {
				return "", fmt.Errorf("template %s: unclosed '{' at byte %d (write {{ for a literal brace)", t.Name, i)
			}
			ph := s[i : i+j+1]
			switch ph {
			case PhQuery:
				out.WriteString(query)
			case PhResponseA:
				out.WriteString(a)
			case PhResponseB:
				out.WriteString(b)
			default:
				return "", fmt.Errorf("template %s: unknown placeholder %s at byte %d (known: %s %s %s; write {{ and }} for literal braces)",
					t.Name, ph, i, PhQuery, PhResponseA, PhResponseB)
			}
			seen[ph] = true
			i += j + 1
		case s[i] == '}':
			return "", fmt.Errorf("template %s: unmatched '}' at byte %d (write }} for a literal brace)", t.Name, i)
		default:
			out.WriteByte(s[i])
			i++
		}
	}
	var missing []string
	for _, ph := range []string{PhQuery, PhResponseA, PhResponseB} {
		if !seen[ph] {
			missing = append(missing, ph)
		}
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("template %s lacks the placeholder(s) %s", t.Name, strings.Join(missing, " "))
	}
	if check {
		return "", nil
	}
	return out.String(), nil
}

// Verdicts.
const (
	VerdictA        = "A"
	VerdictB        = "B"
	VerdictUnparsed = "unparsed"
	VerdictError    = "error"
)

// trimSet is what ParseVerdict strips from both ends of an answer: white space, ASCII
// punctuation and quotes, and typographic quotes.
const trimSet = " \t\r\n\"'`.,:;!?()[]{}*_<>“”‘’«»"

// ParseVerdict reads a judge's answer strictly: after stripping white space, punctuation and
// quotes (trimSet) from both ends, the answer must be exactly "A" or "B" (upper case). So
// `A`, ` "B".`, `(A)`, `**B**` parse; `a`, `Response A`, `A or B`, `I prefer A`, and the
// empty answer do not, and give VerdictUnparsed — an answer is never guessed.
func ParseVerdict(raw string) string {
	s := strings.Trim(raw, trimSet)
	switch s {
	case "A":
		return VerdictA
	case "B":
		return VerdictB
	}
	return VerdictUnparsed
}

// Outcome combines the verdict with the generation shown as A (first) and the verdict with it
// shown as B (second): "win" if the generation is preferred in both, "loss" if in neither,
// "tie" if the orders disagree, "invalid" if either verdict is not A or B.
func Outcome(first, second string) string {
	if (first != VerdictA && first != VerdictB) || (second != VerdictA && second != VerdictB) {
		return "invalid"
	}
	p1, p2 := first == VerdictA, second == VerdictB
	switch {
	case p1 && p2:
		return "win"
	case !p1 && !p2:
		return "loss"
	}
	return "tie"
}
