package train

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/cpo-toolchain/cpo/pkg/model"
	"github.com/cpo-toolchain/cpo/pkg/shard"
)

// FillRefLogps sets RefLogp of every candidate of rows to log pi_ref(y|x) under m (the sum of
// the continuation's token log-probabilities, sequences built as in training: BuildSeq) and
// RefModel to fp, the fingerprint of m (checkpoint.Fingerprint). All rows run as one packed
// batch; call it on micro-batch sized slices.
func FillRefLogps(m *model.Model, fp string, st *Stepper, rows []shard.Candidates) error {
	items := make([]*Item, len(rows))
	for i := range rows {
		it, err := itemOf(&rows[i])
		if err != nil {
			return err
		}
		if it.K() == 0 {
			return fmt.Errorf("row %q has no candidates", it.ID)
		}
		items[i] = it
	}
	eng := st.ref
	if eng == nil {
		eng = st.pol
	}
	ref := &Stepper{Policy: m, Ref: m, Obj: Objective{Name: CPO}, ref: eng, ws: st.ws}
	lps, err := ref.RefLogps(items)
	if err != nil {
		return err
	}
	for i := range rows {
		for j := range rows[i].Candidates {
			v := lps[i][j]
			rows[i].Candidates[j].RefLogp = &v
		}
		rows[i].RefModel = fp
	}
	return nil
}

// PrecomputeRef reads candidates shards (args, or stdin), fills every candidate's ref_logp
// with the reference model m (fingerprint fp) in packed batches of micro rows, and writes the
// rows in order to w. A row whose tokenizer fingerprint is not tokenizer (when tokenizer is not
// empty: the model's) is an error naming its file and row. progress, if not nil, is called with
// the rows done so far. It stops with ctx's error when ctx is cancelled (the caller aborts w).
func PrecomputeRef(ctx context.Context, m *model.Model, fp, tokenizer string, args []string, stdin io.Reader, w *shard.Writer[shard.Candidates], micro int, progress func(rows int)) error {
	return PrecomputeRefOn(ctx, DeviceConfig{}, m, fp, tokenizer, args, stdin, w, micro, progress)
}

// PrecomputeRefOn is PrecomputeRef with the model's forward passes on device dev (a
// forward-only Engine).
func PrecomputeRefOn(ctx context.Context, dev DeviceConfig, m *model.Model, fp, tokenizer string, args []string, stdin io.Reader, w *shard.Writer[shard.Candidates], micro int, progress func(rows int)) error {
	if micro <= 0 {
		micro = 8
	}
	eng, err := NewEngine(dev, m, nil, Hyper{}, true)
	if err != nil {
		return err
	}
	defer eng.Close()
	r, err := shard.NewReader[shard.Candidates](args, stdin)
	if err != nil {
		return err
	}
	defer r.Close()
	st := NewStepperOn(m, m, eng, eng, Objective{Name: CPO})
	var buf []shard.Candidates
	var where []string
	done := 0
	flush := func() error {
		if len(buf) == 0 {
			return nil
		}
		if err := FillRefLogps(m, fp, st, buf); err != nil {
			return fmt.Errorf("%s: %w", where[0], err)
		}
		if err := w.Write(buf...); err != nil {
			return err
		}
		done += len(buf)
		if progress != nil {
			progress(done)
		}
		buf, where = buf[:0], where[:0]
		return nil
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		row, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		f, n := r.Pos()
		if tokenizer != "" && row.Tokenizer != tokenizer {
			return fmt.Errorf("%s row %d: row %q was tokenized with tokenizer %.12s…, but the model's tokenizer is %.12s…: re-tokenize the data with the model's tokenizer (or --skip-tokenizer-check)",
				f, n, row.ID, row.Tokenizer, tokenizer)
		}
		buf = append(buf, row)
		where = append(where, fmt.Sprintf("%s row %d", f, n))
		if len(buf) == micro {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}
