package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func sample() []Tensor {
	a := make([]float32, 3*5)
	for i := range a {
		a[i] = float32(i)*0.37 - 2.1
	}
	b := []float32{1e-30, -0.0, float32(math.Inf(1)), 3.1415927, 65504, 1e30, -7.25}
	return []Tensor{
		{Name: "w.weight", Shape: []int{3, 5}, Data: a},
		{Name: "b", Shape: []int{7}, Data: b},
		{Name: "scalar", Shape: []int{}, Data: []float32{42}},
		{Name: "empty", Shape: []int{0, 4}, Data: nil},
	}
}

func encodeFile(t *testing.T, ts []Tensor, dt DType, meta map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, ts, dt, meta); err != nil {
		t.Fatal(err)
	}
	n, err := Size(ts, dt, meta)
	if err != nil || n != int64(buf.Len()) {
		t.Fatalf("Size = %d, %v; wrote %d", n, err, buf.Len())
	}
	return buf.Bytes()
}

func TestRoundTripF32BitExact(t *testing.T) {
	ts := sample()
	meta := map[string]string{"format": "pt"}
	data := encodeFile(t, ts, F32, meta)
	if hl := binary.LittleEndian.Uint64(data); (8+hl)%8 != 0 {
		t.Errorf("data area not 8-byte aligned: header length %d", hl)
	}
	f, err := NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if f.Metadata()["format"] != "pt" {
		t.Errorf("metadata = %v", f.Metadata())
	}
	if got := strings.Join(f.Names(), ","); got != "w.weight,b,scalar,empty" {
		t.Errorf("names %s", got)
	}
	for _, want := range ts {
		info, ok := f.Info(want.Name)
		if !ok || info.DType != F32 || len(info.Shape) != len(want.Shape) {
			t.Fatalf("%s: info %+v", want.Name, info)
		}
		got, err := f.Float32(want.Name)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want.Data) {
			t.Fatalf("%s: len %d want %d", want.Name, len(got), len(want.Data))
		}
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(want.Data[i]) {
				t.Fatalf("%s[%d] = %v want %v", want.Name, i, got[i], want.Data[i])
			}
		}
	}
}

func TestBF16RoundTrip(t *testing.T) {
	ts := sample()
	data := encodeFile(t, ts, BF16, nil)
	f, err := NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range ts {
		got, err := f.Float32(want.Name)
		if err != nil {
			t.Fatal(err)
		}
		for i, w := range want.Data {
			g := got[i]
			if math.IsInf(float64(w), 0) {
				if g != w {
					t.Errorf("%s[%d]: %v want %v", want.Name, i, g, w)
				}
				continue
			}
			// bf16 keeps 8 significant bits: relative error at most 2^-8.
			if math.Abs(float64(g-w)) > math.Abs(float64(w))/256 {
				t.Errorf("%s[%d]: %v want %v within bf16 precision", want.Name, i, g, w)
			}
		}
	}
}

func TestFloat32ToBF16RoundsToNearestEven(t *testing.T) {
	cases := []struct {
		in   uint32
		want uint16
	}{
		{0x3f800000, 0x3f80}, // 1.0
		{0x3f808000, 0x3f80}, // tie, even stays
		{0x3f818000, 0x3f82}, // tie, odd rounds up
		{0x3f808001, 0x3f81}, // just above half
		{0x3f807fff, 0x3f80}, // just below half
		{0x7f7fffff, 0x7f80}, // max float rounds to +Inf
		{0xff800000, 0xff80}, // -Inf
		{0x80000000, 0x8000}, // -0
	}
	for _, c := range cases {
		if got := Float32ToBF16(math.Float32frombits(c.in)); got != c.want {
			t.Errorf("Float32ToBF16(%#08x) = %#04x want %#04x", c.in, got, c.want)
		}
	}
	nan := Float32ToBF16(math.Float32frombits(0x7f800001))
	if !math.IsNaN(float64(BF16ToFloat32(nan))) {
		t.Errorf("NaN became %#04x", nan)
	}
}

func TestHalfToFloat32(t *testing.T) {
	cases := []struct {
		h    uint16
		want float32
	}{
		{0x3c00, 1}, {0xc000, -2}, {0x7bff, 65504}, {0x0001, 5.960464477539063e-08},
		{0x03ff, 6.097555160522461e-05}, {0x0400, 6.103515625e-05}, {0x3555, 0.333251953125},
		{0x0000, 0}, {0x7c00, float32(math.Inf(1))}, {0xfc00, float32(math.Inf(-1))},
	}
	for _, c := range cases {
		if got := HalfToFloat32(c.h); got != c.want {
			t.Errorf("HalfToFloat32(%#04x) = %v want %v", c.h, got, c.want)
		}
	}
	if got := HalfToFloat32(0x8000); math.Float32bits(got) != 0x80000000 {
		t.Errorf("-0 became %v", got)
	}
	if !math.IsNaN(float64(HalfToFloat32(0x7e00))) {
		t.Error("NaN lost")
	}
}

// rawFile assembles a file from a header string and a data area of n bytes.
func rawFile(hdr string, n int) []byte {
	b := make([]byte, 8, 8+len(hdr)+n)
	binary.LittleEndian.PutUint64(b, uint64(len(hdr)))
	b = append(b, hdr...)
	return append(b, make([]byte, n)...)
}

func TestBadInput(t *testing.T) {
	huge := make([]byte, 16)
	binary.LittleEndian.PutUint64(huge, 5<<30)
	long := make([]byte, 16)
	binary.LittleEndian.PutUint64(long, 100)
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"short", []byte{1, 2, 3}, "shorter than"},
		{"gigabyte header", huge, "exceeds the limit"},
		{"header past file", long, "exceeds the 8 bytes"},
		{"not json", rawFile("[1,2]   ", 0), "does not start with"},
		{"bad json", rawFile(`{"a":`, 0), `tensor "a"`},
		{"unknown dtype", rawFile(`{"a":{"dtype":"F24","shape":[1],"data_offsets":[0,3]}}`, 3), "unknown dtype"},
		{"missing field", rawFile(`{"a":{"dtype":"F32","shape":[1]}}`, 4), "needs dtype, shape and data_offsets"},
		{"size mismatch", rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, 4), "needs 2×4 bytes"},
		{"out of range", rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, 4), "run past the data area"},
		{"huge offsets", rawFile(`{"a":{"dtype":"F32","shape":[1000000000000],"data_offsets":[0,4000000000000]}}`, 4), "run past the data area"},
		{"overflowing shape", rawFile(`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}`, 0), "overflows"},
		{"negative offset", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}`, 4), "invalid data_offsets"},
		{"reversed offsets", rawFile(`{"a":{"dtype":"U8","shape":[0],"data_offsets":[3,1]}}`, 4), "invalid data_offsets"},
		{"negative dim", rawFile(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, 4), "invalid dimension"},
		{"overlap", rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 8), "overlap"},
		{"hole", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}`, 12), "hole"},
		{"uncovered tail", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, 8), "cover 4 bytes but the data area holds 8"},
		{"duplicate", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 8), "appears twice"},
		{"bad metadata", rawFile(`{"__metadata__":{"x":1}}`, 0), "__metadata__"},
		{"trailing", rawFile(`{} x`, 0), "trailing"},
		{"three offsets", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,4]}}`, 4), "2 entries"},
	}
	for _, c := range cases {
		_, err := NewReader(bytes.NewReader(c.data), int64(len(c.data)))
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q does not contain %q", c.name, err, c.want)
		}
	}
}

func TestUnsupportedDTypeRead(t *testing.T) {
	data := rawFile(`{"ids":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}}`, 16)
	f, err := NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Float32("ids"); err == nil || !strings.Contains(err.Error(), "dtype I64 cannot be read") {
		t.Errorf("err = %v", err)
	}
	if err := f.ReadFloat32("ids", make([]float32, 2)); err == nil {
		t.Error("no error")
	}
	if raw, err := f.ReadRaw("ids"); err != nil || len(raw) != 16 {
		t.Errorf("ReadRaw = %d bytes, %v", len(raw), err)
	}
	if err := Write(&bytes.Buffer{}, sample(), F16, nil); err == nil {
		t.Error("writing F16 should be refused")
	}
}

func TestReadFloat32WrongLength(t *testing.T) {
	data := encodeFile(t, sample(), F32, nil)
	f, _ := NewReader(bytes.NewReader(data), int64(len(data)))
	if err := f.ReadFloat32("b", make([]float32, 3)); err == nil || !strings.Contains(err.Error(), `"b" has 7 elements`) {
		t.Errorf("err = %v", err)
	}
	if _, err := f.Float32("nope"); err == nil {
		t.Error("missing tensor read")
	}
}

func TestLargeTensorChunks(t *testing.T) {
	// A tensor larger than the read chunk exercises the chunked conversion.
	n := chunkBytes/2 + 12345
	d := make([]float32, n)
	for i := range d {
		d[i] = float32(i%1000) - 500.5
	}
	ts := []Tensor{{Name: "big", Shape: []int{n}, Data: d}}
	for _, dt := range []DType{F32, BF16} {
		path := filepath.Join(t.TempDir(), "big.safetensors")
		if err := WriteFile(path, ts, dt, nil); err != nil {
			t.Fatal(err)
		}
		f, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		got, err := f.Float32("big")
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		for i := range d {
			if want := BF16ToFloat32(Float32ToBF16(d[i])); (dt == F32 && got[i] != d[i]) || (dt == BF16 && got[i] != want) {
				t.Fatalf("%s: [%d] = %v want %v", dt, i, got[i], d[i])
			}
		}
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.safetensors")
	if err := WriteFile(path, sample(), F32, nil); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	bad := []Tensor{{Name: "x", Shape: []int{3}, Data: []float32{1}}}
	if err := WriteFile(path, bad, F32, nil); err == nil {
		t.Fatal("shape mismatch accepted")
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Error("failed write changed the file")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("temporary files left: %v", ents)
	}
}

func TestShardedRoundTrip(t *testing.T) {
	ts := sample()
	ts = append(ts, Tensor{Name: "z", Shape: []int{10}, Data: make([]float32, 10)})
	dir := t.TempDir()
	// 64-byte shards: w.weight (60 B) alone, b+scalar+empty (32 B), z (40 B).
	files, err := WriteDir(dir, ts, F32, 64, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 4 || filepath.Base(files[0]) != "model-00001-of-00003.safetensors" || filepath.Base(files[3]) != IndexFileName {
		t.Fatalf("files %v", files)
	}
	ix, err := ReadIndex(filepath.Join(dir, IndexFileName))
	if err != nil {
		t.Fatal(err)
	}
	if ix.WeightMap["b"] != "model-00002-of-00003.safetensors" || ix.Metadata["total_size"].(float64) != 4*(15+7+1+10) {
		t.Errorf("index %+v", ix)
	}
	s, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if len(s.Names()) != len(ts) {
		t.Errorf("names %v", s.Names())
	}
	for _, w := range ts {
		got, err := s.Float32(w.Name)
		if err != nil {
			t.Fatal(err)
		}
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(w.Data[i]) {
				t.Fatalf("%s[%d]", w.Name, i)
			}
		}
	}
	// Rewriting unsharded removes the index.
	if _, err := WriteDir(dir, ts, F32, 0, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, IndexFileName)); !os.IsNotExist(err) {
		t.Error("stale index kept")
	}
	s2, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	s2.Close()
}

func TestBadIndex(t *testing.T) {
	dir := t.TempDir()
	if _, err := WriteDir(dir, sample(), F32, 0, nil); err != nil {
		t.Fatal(err)
	}
	write := func(ix Index) error {
		b, _ := json.Marshal(ix)
		if err := os.WriteFile(filepath.Join(dir, IndexFileName), b, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := OpenDir(dir)
		if err == nil {
			s.Close()
		}
		return err
	}
	if err := write(Index{WeightMap: map[string]string{"b": "../model.safetensors"}}); err == nil || !strings.Contains(err.Error(), "not a plain file name") {
		t.Errorf("path escape: %v", err)
	}
	if err := write(Index{WeightMap: map[string]string{"nope": SingleFileName}}); err == nil || !strings.Contains(err.Error(), `"nope" is listed`) {
		t.Errorf("missing tensor: %v", err)
	}
	if err := write(Index{WeightMap: map[string]string{"b": "gone.safetensors"}}); err == nil {
		t.Error("missing shard accepted")
	}
	if err := write(Index{WeightMap: map[string]string{"b": SingleFileName}}); err != nil {
		t.Errorf("partial index: %v", err)
	}
	if _, err := OpenDir(t.TempDir()); err == nil || !strings.Contains(err.Error(), "only safetensors") {
		t.Errorf("empty dir: %v", err)
	}
}

func TestOpenDirHintsAtOtherFormats(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "pytorch_model.bin"), []byte("PK"), 0o644)
	if _, err := OpenDir(dir); err == nil || !strings.Contains(err.Error(), "it has pytorch_model.bin: convert it") {
		t.Errorf("err = %v", err)
	}
}

func TestWriteFill(t *testing.T) {
	ts := sample()
	var filled []Tensor
	calls := 0
	for _, x := range ts {
		x := x
		filled = append(filled, Tensor{Name: x.Name, Shape: x.Shape, Fill: func(dst []float32) error {
			calls++
			copy(dst, x.Data)
			return nil
		}})
	}
	a := encodeFile(t, ts, BF16, nil)
	b := encodeFile(t, filled, BF16, nil)
	if !bytes.Equal(a, b) || calls != len(ts) { // encodeFile writes once; Size calls no Fill
		t.Errorf("Fill output differs (calls %d)", calls)
	}
	dir := t.TempDir()
	if _, err := WriteDir(dir, filled, F32, 64, nil); err != nil {
		t.Fatal(err)
	}
	s, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, _ := s.Float32("b"); v[3] != ts[1].Data[3] {
		t.Error("sharded Fill lost data")
	}
	bad := []Tensor{{Name: "x", Shape: []int{2}, Fill: func([]float32) error { return os.ErrInvalid }}}
	if err := WriteFile(filepath.Join(dir, "bad.safetensors"), bad, F32, nil); err == nil {
		t.Error("Fill error ignored")
	}
	both := []Tensor{{Name: "x", Shape: []int{1}, Data: []float32{1}, Fill: func([]float32) error { return nil }}}
	if err := Write(&bytes.Buffer{}, both, F32, nil); err == nil {
		t.Error("Data and Fill accepted")
	}
}
