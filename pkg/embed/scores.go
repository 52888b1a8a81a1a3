package embed

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strings"

	"github.com/parquet-go/parquet-go"

	"github.com/cpo-toolchain/cpo/pkg/shard"
)

// Scores are user-supplied candidate scores: row id → candidate index → score (higher is
// better).
type Scores map[string]map[int32]float32

// ScoreEntry is one line of a score table: in JSON lines {"id": ..., "candidate": j, "score": s},
// in Parquet the columns id (string), candidate (integer) and score (floating point).
type ScoreEntry struct {
	ID        string  `json:"id" parquet:"id"`
	Candidate int64   `json:"candidate" parquet:"candidate"`
	Score     float64 `json:"score" parquet:"score"`
}

// LoadScores reads a score table: a Parquet file (name ending in .parquet) or JSON lines. The
// whole table is held in memory. A repeated (id, candidate), a negative candidate index or a
// score that is not finite is an error naming the file and line (or row).
func LoadScores(path string) (Scores, error) {
	sc := Scores{}
	add := func(e ScoreEntry, where string) error {
		if e.ID == "" {
			return fmt.Errorf("%s: empty id", where)
		}
		if e.Candidate < 0 || e.Candidate > math.MaxInt32 {
			return fmt.Errorf("%s: candidate index %d out of range", where, e.Candidate)
		}
		if math.IsNaN(e.Score) || math.IsInf(e.Score, 0) {
			return fmt.Errorf("%s: score %v is not finite", where, e.Score)
		}
		m := sc[e.ID]
		if m == nil {
			m = map[int32]float32{}
			sc[e.ID] = m
		}
		if _, dup := m[int32(e.Candidate)]; dup {
			return fmt.Errorf("%s: second score for id %q candidate %d", where, e.ID, e.Candidate)
		}
		m[int32(e.Candidate)] = float32(e.Score)
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if strings.HasSuffix(path, ".parquet") {
		st, err := f.Stat()
		if err != nil {
			return nil, err
		}
		pf, err := parquet.OpenFile(f, st.Size())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		for _, col := range []string{"id", "candidate", "score"} {
			if _, ok := pf.Schema().Lookup(col); !ok {
				return nil, fmt.Errorf("%s: no column %q (want id, candidate, score)", path, col)
			}
		}
		r := parquet.NewGenericReader[ScoreEntry](pf)
		defer r.Close()
		buf := make([]ScoreEntry, 1024)
		var n int64
		for {
			k, err := r.Read(buf)
			for i := range k {
				if e := add(buf[i], fmt.Sprintf("%s row %d", path, n)); e != nil {
					return nil, e
				}
				n++
			}
			if err == io.EOF {
				return sc, nil
			}
			if err != nil {
				return nil, fmt.Errorf("%s row %d: %w", path, n, err)
			}
		}
	}
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 1<<16), 1<<26)
	for line := 1; s.Scan(); line++ {
		b := s.Bytes()
		if len(strings.TrimSpace(string(b))) == 0 {
			continue
		}
		var e struct {
			ID        *string  `json:"id"`
			Candidate *int64   `json:"candidate"`
			Score     *float64 `json:"score"`
		}
		where := fmt.Sprintf("%s line %d", path, line)
		if err := json.Unmarshal(b, &e); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if e.ID == nil || e.Candidate == nil || e.Score == nil {
			return nil, fmt.Errorf("%s: want {\"id\": ..., \"candidate\": ..., \"score\": ...}", where)
		}
		if err := add(ScoreEntry{*e.ID, *e.Candidate, *e.Score}, where); err != nil {
			return nil, err
		}
	}
	return sc, s.Err()
}

// ScoreStats counts what RunScores did.
type ScoreStats struct {
	Rows       int64 // rows ranked
	Candidates int64 // candidates given a score
	Unused     int64 // ids of the table that no row had
}

// Report writes the final report.
func (s *ScoreStats) Report(w io.Writer) {
	fmt.Fprintf(w, "rows: %d ranked by score; candidates scored: %d; ids of the score table not in the input: %d\n",
		s.Rows, s.Candidates, s.Unused)
}

// RunScores ranks every row of src by sc: each candidate's Score is the table's, the ranking is
// the ground truth first then the other candidates by score, descending, ties by lower index,
// and RankBy is "score:<name>". Every negative must have a score (the ground truth's may be
// missing: its Score is then left as it was); a missing one, or a score for a candidate index the
// row does not have, is an error naming the file and row.
func RunScores(ctx context.Context, src Source, write func(rows ...shard.Candidates) error, sc Scores, name string) (ScoreStats, error) {
	var st ScoreStats
	used := map[string]bool{}
	for {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		row, err := src.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return st, err
		}
		file, i := src.Pos()
		m := sc[row.ID]
		used[row.ID] = true
		scores := make([]float32, len(row.Candidates))
		for j := range row.Candidates {
			s, ok := m[int32(j)]
			switch {
			case ok:
				scores[j] = s
				row.Candidates[j].Score = &scores[j]
				st.Candidates++
			case j > 0:
				return st, fmt.Errorf("%s row %d: no score for row %q candidate %d", file, i, row.ID, j)
			}
		}
		for j := range m {
			if int(j) >= len(row.Candidates) {
				return st, fmt.Errorf("%s row %d: the score table scores candidate %d of row %q, which has %d", file, i, j, row.ID, len(row.Candidates))
			}
		}
		row.Ranking = Rank(scores)
		row.RankBy = "score:" + name
		if err := write(row); err != nil {
			return st, err
		}
		st.Rows++
	}
	for id := range sc {
		if !used[id] {
			st.Unused++
		}
	}
	return st, nil
}
