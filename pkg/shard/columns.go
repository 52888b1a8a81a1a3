package shard

import (
	"fmt"
	"strings"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

// Column describes one top-level column of a schema.
type Column struct {
	Name string `json:"name"`
	Type string `json:"type"` // e.g. string, int64, double, list<int32>, list<struct<kind: string, ...>>
	Doc  string `json:"doc"`
	// Writer is the tool that fills the column.
	Writer string `json:"writer"`
}

// columnDocs documents every column: "schema.column" → writer | meaning.
var columnDocs = map[string]string{
	"example.id":           "cpo-tokenize | unique id of the example within its data set",
	"example.source":       "cpo-tokenize | data set or file it came from (e.g. dolly, wiki)",
	"example.split":        "cpo-tokenize | train or test",
	"example.prompt":       "cpo-tokenize | the prompt text after the prompt template was applied (the prefix, for continuation data)",
	"example.response":     "cpo-tokenize | the ground-truth response (continuation) text",
	"example.prompt_ids":   "cpo-tokenize | token ids of the prompt, BOS first when the tokenizer adds one",
	"example.response_ids": "cpo-tokenize | token ids of the response, ending with EOS when appended",
	"example.tokenizer":    "cpo-tokenize | fingerprint of the tokenizer (hex sha256 of its definition)",

	"candidates.id":           "cpo-negatives | as in example",
	"candidates.source":       "cpo-negatives | as in example",
	"candidates.split":        "cpo-negatives | as in example",
	"candidates.prompt":       "cpo-negatives | as in example",
	"candidates.response":     "cpo-negatives | as in example",
	"candidates.prompt_ids":   "cpo-negatives | as in example",
	"candidates.response_ids": "cpo-negatives | as in example",
	"candidates.tokenizer":    "cpo-negatives | as in example",
	"candidates.candidates": "cpo-negatives, cpo-embed, cpo-train precompute-ref | K continuations, candidate 0 the ground truth; kind (gt, bn, mn, tn, an), ids (continuation token ids), " +
		"score (cosine similarity of the embedding to the ground truth's, or a user score; null if not computed), ref_logp (log pi_ref(y|x), summed over the continuation; null if not precomputed)",
	"candidates.ranking":   "cpo-embed | candidate indices best first (the ground truth first), a permutation of 0..K-1; empty when unranked",
	"candidates.rank_by":   "cpo-embed | what produced the ranking, e.g. cosine:<model fingerprint>:<pooling>:<layer> or score:<name>; empty when unranked",
	"candidates.ref_model": "cpo-train precompute-ref | fingerprint of the reference model that produced ref_logp; empty if none",
	"candidates.seed":      "cpo-negatives | random seed that produced this row's negatives",

	"generation.id":              "cpo-generate | id of the prompt's example",
	"generation.source":          "cpo-generate | as in example",
	"generation.split":           "cpo-generate | as in example",
	"generation.prompt":          "cpo-generate | prompt text",
	"generation.prompt_ids":      "cpo-generate | prompt token ids the model saw (after any left truncation)",
	"generation.reference":       "cpo-generate | the ground-truth response text the generation is judged against",
	"generation.reference_ids":   "cpo-generate | the ground-truth response ids",
	"generation.tokenizer":       "cpo-generate | tokenizer fingerprint",
	"generation.model":           "cpo-generate | fingerprint of the generating model",
	"generation.model_name":      "cpo-generate | human label of the model (path or name)",
	"generation.decoding":        "cpo-generate | short label of the decoding configuration, e.g. greedy, top-k50-p0.7, beam4",
	"generation.decoding_config": "cpo-generate | the full decoding configuration as canonical JSON (global seed, limits, vocab_limit when the tokenizer is smaller than the model)",
	"generation.sample":          "cpo-generate | index of this generation among those of the same prompt and configuration",
	"generation.text":            "cpo-generate | decoded generated text (EOS not included)",
	"generation.ids":             "cpo-generate | generated token ids, ending with EOS when finish is eos",
	"generation.logp":            "cpo-generate | log Q(y|x) of the generated ids under the generating model, natural log, summed",
	"generation.finish":          "cpo-generate | eos (stopped at EOS) or length (hit the token limit)",
	"generation.seed":            "cpo-generate | the per-sequence seed of the sampler (derived from the global seed, the id and the sample index)",

	"judgment.id":         "cpo-judge | id of the judged generation",
	"judgment.model":      "cpo-judge | fingerprint of the generating model",
	"judgment.model_name": "cpo-judge | human label of the generating model",
	"judgment.decoding":   "cpo-judge | decoding label of the generation",
	"judgment.sample":     "cpo-judge | sample index of the generation",
	"judgment.judge":      "cpo-judge | the judge: endpoint model name, or likelihood:<fingerprint>",
	"judgment.template":   "cpo-judge | template name and hash",
	"judgment.gen_first":  "cpo-judge | verdict with the generation shown as response A: A, B, unparsed or error",
	"judgment.gen_second": "cpo-judge | verdict with the generation shown as response B: A, B, unparsed or error",
	"judgment.raw_first":  "cpo-judge | raw answer (or error) for gen_first",
	"judgment.raw_second": "cpo-judge | raw answer (or error) for gen_second",
	"judgment.outcome":    "cpo-judge | win (generation preferred in both orders), loss (in neither), tie (orders disagree), invalid (a verdict missing)",

	"score.model":      "cpo-score | fingerprint of the model",
	"score.model_name": "cpo-score | human label of the model",
	"score.decoding":   "cpo-score | decoding label",
	"score.metric":     "cpo-score | win_rate, tie_rate, invalid_rate, win_rate_diff, exact_match, reverse_kl (eq. 9) or nll (eq. 10)",
	"score.value":      "cpo-score | the metric's value",
	"score.lo":         "cpo-score | lower end of the 95% confidence interval (NaN if none)",
	"score.hi":         "cpo-score | upper end of the 95% confidence interval (NaN if none)",
	"score.n":          "cpo-score | number of items the metric is computed over",
	"score.baseline":   "cpo-score | the other model of a paired difference; empty otherwise",
	"score.scorer":     "cpo-score | fingerprint of the larger model for reverse_kl and nll; empty otherwise",
}

func schemaModel(name string) any {
	switch name {
	case "example":
		return Example{}
	case "candidates":
		return Candidates{}
	case "generation":
		return Generation{}
	case "judgment":
		return Judgment{}
	case "score":
		return Score{}
	}
	return nil
}

// Columns lists the top-level columns of the named schema as the Parquet files store them.
func Columns(name string) ([]Column, error) {
	m := schemaModel(name)
	if m == nil {
		return nil, fmt.Errorf("unknown schema %q (known: example, candidates, generation, judgment, score)", name)
	}
	s := parquet.SchemaOf(m)
	var cols []Column
	for _, f := range s.Fields() {
		doc := columnDocs[name+"."+f.Name()]
		writer, meaning, _ := strings.Cut(doc, " | ")
		cols = append(cols, Column{Name: f.Name(), Type: typeString(f), Doc: meaning, Writer: writer})
	}
	return cols, nil
}

// typeString renders a Parquet node as a compact type: string, int32, list<int32>, ...
func typeString(n parquet.Node) string {
	t := ""
	switch {
	case !n.Leaf() && isList(n):
		elem := n.Fields()[0].Fields()[0]
		t = "list<" + typeString(elem) + ">"
	case !n.Leaf():
		var parts []string
		for _, f := range n.Fields() {
			parts = append(parts, f.Name()+": "+typeString(f))
		}
		t = "struct<" + strings.Join(parts, ", ") + ">"
	default:
		t = leafType(n)
	}
	if n.Optional() {
		t += " (nullable)"
	}
	return t
}

func isList(n parquet.Node) bool {
	if n.Type() == nil {
		return false
	}
	lt := n.Type().LogicalType()
	if lt == nil {
		return false
	}
	_, ok := lt.Value.(*format.ListType)
	return ok
}

func leafType(n parquet.Node) string {
	lt := n.Type().LogicalType()
	if lt != nil {
		if _, ok := lt.Value.(*format.StringType); ok {
			return "string"
		}
	}
	switch n.Type().Kind() {
	case parquet.Boolean:
		return "bool"
	case parquet.Int32:
		return "int32"
	case parquet.Int64:
		return "int64"
	case parquet.Float:
		return "float"
	case parquet.Double:
		return "double"
	case parquet.ByteArray:
		return "bytes"
	}
	return n.Type().String()
}

// Markdown renders the column tables of every schema, as docs/shards.md embeds them.
func Markdown() string {
	var b strings.Builder
	for _, s := range Schemas {
		cols, _ := Columns(s.Name)
		fmt.Fprintf(&b, "### %s (version %d)\n\n", s.Name, s.Version)
		fmt.Fprintf(&b, "Required in JSON input: %s.\n\n", "`"+strings.Join(s.Required, "`, `")+"`")
		b.WriteString("| column | type | written by | meaning |\n|---|---|---|---|\n")
		for _, c := range cols {
			fmt.Fprintf(&b, "| `%s` | `%s` | %s | %s |\n", c.Name, c.Type, c.Writer, c.Doc)
		}
		b.WriteString("\n")
	}
	return b.String()
}
