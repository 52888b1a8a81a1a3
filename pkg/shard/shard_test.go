package shard

import (
	"bytes"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func f32(v float32) *float32 { return &v }
func f64(v float64) *float64 { return &v }

func sampleExamples(n int, rng *rand.Rand) []Example {
	out := make([]Example, n)
	for i := range out {
		p := make([]int32, 1+rng.Intn(20))
		r := make([]int32, 1+rng.Intn(40))
		for j := range p {
			p[j] = rng.Int31n(50257)
		}
		for j := range r {
			r[j] = rng.Int31n(50257)
		}
		out[i] = Example{ID: fmt.Sprintf("ex-%d", i), Source: "dolly", Split: "train",
			Prompt: "Say héllo\n", Response: "hi ✓", PromptIDs: p, ResponseIDs: r, Tokenizer: "abc123"}
	}
	return out
}

func sampleCandidates() []Candidates {
	return []Candidates{
		{ID: "a", Source: "s", Split: "train", Prompt: "p", Response: "r", PromptIDs: []int32{1, 2}, ResponseIDs: []int32{3, 4, 0},
			Tokenizer: "tk", Candidates: []Candidate{
				{Kind: KindGT, IDs: []int32{3, 4, 0}, Score: f32(1), RefLogp: f64(-3.5)},
				{Kind: KindBN, IDs: []int32{9, 0}, Score: f32(0.25), RefLogp: f64(-7.25)},
				{Kind: KindTN, IDs: []int32{3, 0}},
			}, Ranking: []int32{0, 1, 2}, RankBy: "cosine:fp", RefModel: "ref", Seed: 42},
		{ID: "b", PromptIDs: []int32{}, ResponseIDs: []int32{5}, Tokenizer: "tk",
			Candidates: []Candidate{{Kind: KindGT, IDs: []int32{5}}, {Kind: KindMN, IDs: []int32{6}}}, Ranking: []int32{}},
	}
}

// normalize makes nil and empty slices compare equal (Parquet does not distinguish them).
func normalize(v any) any {
	b := fmt.Sprintf("%+v", v)
	b = strings.ReplaceAll(b, "[]", "")
	return b
}

func roundTrip[T Row](t *testing.T, rows []T, out string) []T {
	t.Helper()
	w, err := NewWriter[T](out, nil, Options{RowGroupRows: 7})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rows...); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := ReadAll[T]([]string{out}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(rows) {
		t.Fatalf("read %d rows, wrote %d", len(got), len(rows))
	}
	for i := range rows {
		if !reflect.DeepEqual(normalize(deref(rows[i])), normalize(deref(got[i]))) {
			t.Fatalf("row %d differs:\nwrote %+v\nread  %+v", i, rows[i], got[i])
		}
	}
	return got
}

// deref expands candidate pointers so that they compare by value.
func deref(v any) any {
	if c, ok := v.(Candidates); ok {
		var s []string
		for _, cd := range c.Candidates {
			sc, rl := "nil", "nil"
			if cd.Score != nil {
				sc = fmt.Sprint(*cd.Score)
			}
			if cd.RefLogp != nil {
				rl = fmt.Sprint(*cd.RefLogp)
			}
			s = append(s, fmt.Sprintf("%s %v %s %s", cd.Kind, cd.IDs, sc, rl))
		}
		c.Candidates = nil
		return fmt.Sprintf("%+v %v", c, s)
	}
	return v
}

func TestRoundTripEverySchema(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewSource(1))
	roundTrip(t, sampleExamples(50, rng), filepath.Join(dir, "ex.parquet"))
	got := roundTrip(t, sampleCandidates(), filepath.Join(dir, "cand.parquet"))
	if got[0].Candidates[2].Score != nil || *got[0].Candidates[1].Score != 0.25 {
		t.Fatalf("optional score not preserved: %+v", got[0].Candidates)
	}
	roundTrip(t, []Generation{{ID: "a", PromptIDs: []int32{1}, IDs: []int32{2, 3}, Model: "m", ModelName: "mle", Decoding: "greedy",
		DecodingConfig: `{"strategy":"greedy"}`, Text: "x", Logp: -1.5, Finish: "eos", Seed: 3, Sample: 1}}, filepath.Join(dir, "gen.parquet"))
	roundTrip(t, []Judgment{{ID: "a", Model: "m", Decoding: "greedy", Judge: "j", Template: "dolly", GenFirst: "A", GenSecond: "B", Outcome: "tie"}},
		filepath.Join(dir, "judge.parquet"))
	roundTrip(t, []Score{{Model: "m", Decoding: "greedy", Metric: "win_rate", Value: 0.5, Lo: 0.4, Hi: 0.6, N: 100}}, filepath.Join(dir, "score.parquet"))
}

func TestDirectoryOutputShardsAndReplaces(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	rows := sampleExamples(25, rand.New(rand.NewSource(2)))
	w, err := NewWriter[Example](dir, nil, Options{ShardRows: 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rows...); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Fatal("output directory visible before Close")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	names, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(names) != 3 || filepath.Base(names[2]) != "part-00002.parquet" {
		t.Fatalf("parts: %v", names)
	}
	got, err := ReadAll[Example]([]string{dir}, nil)
	if err != nil || len(got) != 25 || got[24].ID != rows[24].ID {
		t.Fatalf("read back %d rows, err %v", len(got), err)
	}
	// A second run with fewer rows replaces the whole directory: no stale parts remain.
	w, _ = NewWriter[Example](dir, nil, Options{ShardRows: 10})
	w.Write(rows[:5]...)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	names, _ = filepath.Glob(filepath.Join(dir, "*"))
	if len(names) != 1 {
		t.Fatalf("stale parts after rewrite: %v", names)
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(dir), ".*"))
	if len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

func TestStdoutStreamAndStdinSpool(t *testing.T) {
	var buf bytes.Buffer
	rows := sampleExamples(30, rand.New(rand.NewSource(3)))
	w, err := NewWriter[Example]("-", &buf, Options{RowGroupRows: 8})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(rows...)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := ReadAll[Example](nil, bytes.NewReader(buf.Bytes()))
	if err != nil || len(got) != 30 {
		t.Fatalf("stdin read: %d rows, %v", len(got), err)
	}
	f, err := Open("-", bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if n := len(f.PF.RowGroups()); n != 4 {
		t.Fatalf("want 4 row groups of 8 rows, got %d", n)
	}
}

func expectErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one mentioning %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("error %q does not mention %q", err, p)
		}
	}
	if strings.Contains(err.Error(), "\n") {
		t.Fatalf("error is not one line: %q", err)
	}
}

func TestBadInputs(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.parquet")
	roundTrip(t, sampleExamples(40, rand.New(rand.NewSource(4))), good)
	data, _ := os.ReadFile(good)

	trunc := filepath.Join(dir, "trunc.parquet")
	os.WriteFile(trunc, data[:len(data)/2], 0o644)
	_, err := ReadAll[Example]([]string{trunc}, nil)
	expectErr(t, err, "trunc.parquet", "not a readable Parquet file")

	corrupt := filepath.Join(dir, "corrupt.parquet")
	bad := append([]byte(nil), data...)
	for i := 8; i < len(bad)/2; i += 3 {
		bad[i] ^= 0x5a
	}
	os.WriteFile(corrupt, bad, 0o644)
	_, err = ReadAll[Example]([]string{corrupt}, nil)
	expectErr(t, err, "corrupt.parquet")

	empty := filepath.Join(dir, "empty.parquet")
	os.WriteFile(empty, nil, 0o644)
	_, err = ReadAll[Example]([]string{empty}, nil)
	expectErr(t, err, "empty.parquet", "empty input")
	_, err = ReadAll[Example](nil, bytes.NewReader(nil))
	expectErr(t, err, "stdin", "empty input")

	_, err = ReadAll[Candidates]([]string{good}, nil)
	expectErr(t, err, "good.parquet", "expected a candidates shard", "found an example shard")

	_, err = ReadAll[Example]([]string{filepath.Join(dir, "nope*.parquet")}, nil)
	expectErr(t, err, "matches no file")

	// A row that breaks an invariant names the file and the row.
	cands := sampleCandidates()
	cfile := filepath.Join(dir, "cand.parquet")
	roundTrip(t, cands, cfile)
	w, _ := NewWriter[Candidates](filepath.Join(dir, "x.parquet"), nil, Options{})
	bad0 := cands[1]
	bad0.Candidates = []Candidate{{Kind: KindBN, IDs: []int32{1}}}
	expectErr(t, w.Write(cands[0], bad0), "row 1", "ground truth")
	w.Abort()
	if _, err := os.Stat(filepath.Join(dir, "x.parquet")); err == nil {
		t.Fatal("aborted writer left its file")
	}
}

func TestNewerVersionRejected(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "v9.parquet")
	w, _ := NewWriter[Example](path, nil, Options{})
	w.info.Version = 9 // as a future build would write it
	w.pw = nil
	w.f.Close()
	os.Remove(w.tmpName)
	w.openTemp(dir, "v9.parquet")
	w.startPart()
	w.Write(sampleExamples(1, rand.New(rand.NewSource(1)))...)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := ReadAll[Example]([]string{path}, nil)
	expectErr(t, err, "v9.parquet", "version 9 is newer")
}

// TestKilledWriterLeavesNoFile runs a writer in a child process, kills it mid-write, and checks
// that nothing appears under the final name.
func TestKilledWriterLeavesNoFile(t *testing.T) {
	if os.Getenv("CPO_SHARD_CHILD") != "" {
		out := os.Getenv("CPO_SHARD_CHILD")
		w, err := NewWriter[Example](out, nil, Options{RowGroupRows: 100})
		if err != nil {
			os.Exit(3)
		}
		rng := rand.New(rand.NewSource(5))
		fmt.Println("writing")
		for {
			w.Write(sampleExamples(100, rng)...)
		}
	}
	for _, name := range []string{"one.parquet", "dir"} {
		dir := t.TempDir()
		out := filepath.Join(dir, name)
		cmd := exec.Command(os.Args[0], "-test.run=TestKilledWriterLeavesNoFile")
		cmd.Env = append(os.Environ(), "CPO_SHARD_CHILD="+out)
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 7)
		io.ReadFull(stdout, b)
		time.Sleep(300 * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
		if _, err := os.Stat(out); err == nil {
			t.Fatalf("%s exists after the writer was killed", out)
		}
		// The temporary it left is hidden and skipped by Expand.
		if _, err := Expand([]string{dir}); err == nil {
			t.Fatalf("Expand found shards in %s", dir)
		}
	}
}

func readFileBytes(p string) ([]byte, error) { return os.ReadFile(p) }

// TestColumnarMatchesGeneric reads the same files through the columnar fast path and through
// parquet-go's generic reader and requires identical rows, empty lists included.
func TestColumnarMatchesGeneric(t *testing.T) {
	dir := t.TempDir()
	ex := sampleExamples(60, rand.New(rand.NewSource(8)))
	ex[3].PromptIDs = nil
	ex[4].ResponseIDs = []int32{}
	gens := []Generation{{ID: "g", PromptIDs: []int32{1, 2}, IDs: nil, Model: "m", Decoding: "d", Logp: -2.25, Sample: 3, Seed: -7},
		{ID: "h", PromptIDs: []int32{}, IDs: []int32{5}, Model: "m", Decoding: "d", Text: "ü"}}
	check := func(name string, write func(string), read func(string) any) {
		path := filepath.Join(dir, name)
		write(path)
		noColumnar = true
		want := read(path)
		noColumnar = false
		got := read(path)
		if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
			t.Fatalf("%s: columnar read differs:\n%+v\n%+v", name, got, want)
		}
	}
	check("ex.parquet", func(p string) {
		w, _ := NewWriter[Example](p, nil, Options{RowGroupRows: 16})
		w.Write(ex...)
		w.Close()
	}, func(p string) any { r, err := ReadAll[Example]([]string{p}, nil); must(t, err); return normalize(r) })
	check("gen.parquet", func(p string) {
		w, _ := NewWriter[Generation](p, nil, Options{})
		w.Write(gens...)
		w.Close()
	}, func(p string) any { r, err := ReadAll[Generation]([]string{p}, nil); must(t, err); return normalize(r) })
	if _, ok := columnarPlan[Example](mustOpen(t, filepath.Join(dir, "ex.parquet"))); !ok {
		t.Fatal("columnar path not taken for examples")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mustOpen(t *testing.T, p string) *File {
	f, err := Open(p, nil)
	must(t, err)
	t.Cleanup(func() { f.Close() })
	return f
}

func TestOutputModesAndStdinNames(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f.parquet")
	writeExamples(t, file, sampleExamples(3, rand.New(rand.NewSource(1))))
	if st, _ := os.Stat(file); st.Mode().Perm() != 0o644 {
		t.Fatalf("shard file mode %v, want 0644", st.Mode().Perm())
	}
	out := filepath.Join(dir, "parts")
	w, _ := NewWriter[Example](out, nil, Options{})
	w.Write(sampleExamples(2, rand.New(rand.NewSource(1)))...)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(out); st.Mode().Perm() != 0o755 {
		t.Fatalf("shard directory mode %v, want 0755", st.Mode().Perm())
	}
	// Errors about spooled standard input name it "stdin", not the temporary file.
	raw, _ := os.ReadFile(file)
	args, cleanup, err := SpoolStdin(nil, bytes.NewReader(raw))
	must(t, err)
	defer cleanup()
	_, err = ReadAll[Candidates](args, nil)
	expectErr(t, err, "stdin: expected a candidates shard")
}

// A 17-byte file claiming a 1.3 GB footer is refused before anything is allocated.
func TestHugeFooterClaim(t *testing.T) {
	p := filepath.Join(t.TempDir(), "tiny.parquet")
	os.WriteFile(p, []byte("PAR110\x15D\x15V\x15\x81\x84PAR1"), 0o644)
	_, err := ReadAll[Example]([]string{p}, nil)
	expectErr(t, err, "tiny.parquet", "footer of", "claimed")
}
