package checkpoint

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/cpo-toolchain/cpo/pkg/model"
)

// Summary is what `cpo-model info` prints: the architecture, sizes, parameter count, storage
// dtype and fingerprint of a checkpoint.
type Summary struct {
	Dir           string   `json:"dir"`
	Arch          string   `json:"arch"`
	VocabSize     int      `json:"vocab_size"`
	MaxSeqLen     int      `json:"max_seq_len"`
	Layers        int      `json:"layers"`
	Heads         int      `json:"heads"`
	KVHeads       int      `json:"kv_heads"`
	Width         int      `json:"width"`
	FFN           int      `json:"ffn"`
	TiedHead      bool     `json:"tied_head"`
	RopeTheta     float64  `json:"rope_theta,omitempty"`
	NormEps       float64  `json:"norm_eps"`
	BOS           int      `json:"bos_token_id"`
	EOS           int      `json:"eos_token_id"`
	Params        int      `json:"params"`
	DType         string   `json:"dtype"`
	Files         []string `json:"files"`
	Bytes         int64    `json:"bytes"`
	Fingerprint   string   `json:"fingerprint"`
	TokenizerFile []string `json:"tokenizer_files"`
}

// Summarize loads the checkpoint in dir and describes it.
func Summarize(dir string) (*Summary, error) {
	in, err := Describe(dir)
	if err != nil {
		return nil, err
	}
	m, err := Load(dir)
	if err != nil {
		return nil, err
	}
	fp, err := Fingerprint(m)
	if err != nil {
		return nil, err
	}
	c := m.Config
	s := &Summary{Dir: dir, Arch: c.Arch, VocabSize: c.VocabSize, MaxSeqLen: c.MaxSeqLen, Layers: c.NLayer,
		Heads: c.NHead, KVHeads: c.NKVHead, Width: c.DModel, FFN: c.DFF, TiedHead: c.TieEmbeddings,
		NormEps: c.NormEps, BOS: c.BOS, EOS: c.EOS, Params: m.NumParams(), DType: in.DType(),
		Files: in.Files, Bytes: in.Bytes, Fingerprint: fp, TokenizerFile: TokenizerFilesIn(dir)}
	if c.Arch == model.ArchLlama {
		s.RopeTheta = c.RopeTheta
	}
	return s, nil
}

// WriteText prints the summary as aligned "key: value" lines.
func (s *Summary) WriteText(w io.Writer) error {
	rows := [][2]string{
		{"dir", s.Dir},
		{"arch", s.Arch},
		{"params", fmt.Sprintf("%d (%.2fM)", s.Params, float64(s.Params)/1e6)},
		{"vocab_size", strconv.Itoa(s.VocabSize)},
		{"max_seq_len", strconv.Itoa(s.MaxSeqLen)},
		{"layers", strconv.Itoa(s.Layers)},
		{"heads", fmt.Sprintf("%d (kv %d, head size %d)", s.Heads, s.KVHeads, s.Width/max(s.Heads, 1))},
		{"width", strconv.Itoa(s.Width)},
		{"ffn", strconv.Itoa(s.FFN)},
		{"tied_head", strconv.FormatBool(s.TiedHead)},
	}
	if s.RopeTheta != 0 {
		rows = append(rows, [2]string{"rope_theta", strconv.FormatFloat(s.RopeTheta, 'g', -1, 64)})
	}
	rows = append(rows,
		[2]string{"norm_eps", strconv.FormatFloat(s.NormEps, 'g', -1, 64)},
		[2]string{"bos/eos", fmt.Sprintf("%d/%d", s.BOS, s.EOS)},
		[2]string{"dtype", s.DType},
		[2]string{"files", strings.Join(s.Files, " ")},
		[2]string{"bytes", strconv.FormatInt(s.Bytes, 10)},
		[2]string{"tokenizer", strings.Join(s.TokenizerFile, " ")},
		[2]string{"fingerprint", s.Fingerprint},
	)
	bw := bufio.NewWriter(w)
	for _, r := range rows {
		fmt.Fprintf(bw, "%-12s %s\n", r[0]+":", r[1])
	}
	return bw.Flush()
}

// LogprobOptions control WriteLogprobs.
type LogprobOptions struct {
	// BatchTokens is the number of tokens packed into one forward pass (0: 2048). Lines are
	// never split; a line longer than this runs alone.
	BatchTokens int
}

// WriteLogprobs reads lines of space-separated token ids from r and writes, for each line,
// a JSON array of log p(token_t | tokens before t) in natural log for t = 1..n-1 (n-1
// numbers; [] for an empty or one-token line). Lines are packed into batches without padding
// and answered in input order. A token outside [0, V) or a line longer than the model's
// MaxSeqLen is an error naming the line.
func WriteLogprobs(m *model.Model, r io.Reader, w io.Writer, opt LogprobOptions) error {
	if opt.BatchTokens <= 0 {
		opt.BatchTokens = 2048
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	ws := model.NewWorkspace()
	var seqs [][]int32
	ntok := 0
	flush := func() error {
		if len(seqs) == 0 {
			return nil
		}
		// Empty lines take no part in the forward pass.
		var nonEmpty [][]int32
		for _, s := range seqs {
			if len(s) > 0 {
				nonEmpty = append(nonEmpty, s)
			}
		}
		var lp []float32
		b := model.Pack(nonEmpty)
		if len(b.Tokens) > 0 {
			lp = m.Forward(ws, b)
		}
		k := 0
		for _, s := range seqs {
			if len(s) == 0 {
				writeArray(bw, nil)
				continue
			}
			writeArray(bw, lp[b.Starts[k]:b.Starts[k]+len(s)-1])
			k++
		}
		seqs, ntok = seqs[:0], 0
		if err := bw.Flush(); err != nil {
			return err
		}
		return nil
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<30)
	V, T := m.Config.VocabSize, m.Config.MaxSeqLen
	for line := 1; sc.Scan(); line++ {
		fields := strings.Fields(sc.Text())
		if len(fields) > T {
			return fmt.Errorf("stdin line %d: %d tokens, more than the model's maximum sequence length %d", line, len(fields), T)
		}
		seq := make([]int32, len(fields))
		for i, f := range fields {
			v, err := strconv.ParseInt(f, 10, 64)
			if err != nil || v < 0 || v >= int64(V) {
				return fmt.Errorf("stdin line %d: token %d: %q is not a token id in [0, %d)", line, i+1, f, V)
			}
			seq[i] = int32(v)
		}
		if ntok+len(seq) > opt.BatchTokens {
			if err := flush(); err != nil {
				return err
			}
		}
		seqs = append(seqs, seq)
		ntok += len(seq)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("stdin: %w", err)
	}
	return flush()
}

// writeArray writes vs as a JSON array of numbers on one line (shortest float32 form;
// non-finite values, which JSON lacks, as null).
func writeArray(w *bufio.Writer, vs []float32) {
	w.WriteByte('[')
	for i, v := range vs {
		if i > 0 {
			w.WriteByte(',')
		}
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			w.WriteString("null")
			continue
		}
		w.WriteString(strconv.FormatFloat(float64(v), 'g', -1, 32))
	}
	w.WriteString("]\n")
}
