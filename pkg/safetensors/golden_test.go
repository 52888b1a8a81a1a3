package safetensors

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// goldenDir holds files written by scripts/checkpoint/make_safetensors_golden.py (PyTorch)
// and the fuzz seed corpus.
const goldenDir = "../../testdata/safetensors"

// TestPythonGolden reads a file written by an independent Python writer, with conversions
// done by PyTorch, and compares every element bit for bit.
func TestPythonGolden(t *testing.T) {
	var want map[string]json.RawMessage
	b, err := os.ReadFile(filepath.Join(goldenDir, "python_mixed.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	f, err := Open(filepath.Join(goldenDir, "python_mixed.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Metadata()["format"] != "pt" {
		t.Errorf("metadata %v", f.Metadata())
	}
	for _, name := range []string{"f32", "f16", "bf16", "f64"} {
		var e struct {
			Shape []int
			Bits  []uint32 `json:"f32_bits"`
		}
		if err := json.Unmarshal(want[name], &e); err != nil {
			t.Fatal(err)
		}
		info, _ := f.Info(name)
		if len(info.Shape) != len(e.Shape) {
			t.Errorf("%s: shape %v want %v", name, info.Shape, e.Shape)
		}
		got, err := f.Float32(name)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(e.Bits) {
			t.Fatalf("%s: %d values want %d", name, len(got), len(e.Bits))
		}
		for i := range got {
			if math.Float32bits(got[i]) != e.Bits[i] {
				t.Errorf("%s[%d] = %#08x want %#08x", name, i, math.Float32bits(got[i]), e.Bits[i])
			}
		}
	}
	if _, err := f.Float32("ids"); err == nil {
		t.Error("I64 read as float")
	}
	// Our bf16 rounding against PyTorch's.
	var src []uint32
	var rne []uint16
	json.Unmarshal(want["src_f32_bits"], &src)
	json.Unmarshal(want["bf16_rne"], &rne)
	if len(src) == 0 || len(src) != len(rne) {
		t.Fatalf("golden has %d sources, %d roundings", len(src), len(rne))
	}
	for i := range src {
		if got := Float32ToBF16(math.Float32frombits(src[i])); got != rne[i] {
			t.Errorf("Float32ToBF16(%#08x) = %#04x, PyTorch %#04x", src[i], got, rne[i])
		}
	}
}

// FuzzRead feeds arbitrary bytes to the reader: it must never panic, never allocate beyond
// the input's size, and every tensor it accepts must be readable.
func FuzzRead(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join(goldenDir, "*.safetensors"))
	more, _ := filepath.Glob(filepath.Join(goldenDir, "*", "*.safetensors"))
	seeds = append(seeds, more...)
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err == nil {
			f.Add(b)
		}
	}
	var buf bytes.Buffer
	Write(&buf, sample(), BF16, map[string]string{"format": "pt"})
	f.Add(buf.Bytes())
	f.Add(rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F16","shape":[2],"data_offsets":[4,8]}}`, 8))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		total := int64(0)
		for _, ti := range r.Tensors() {
			total += ti.End - ti.Begin
			if ti.End-ti.Begin > int64(len(data)) {
				t.Fatalf("tensor %q claims %d bytes of a %d-byte file", ti.Name, ti.End-ti.Begin, len(data))
			}
			if ti.DType.Float() {
				if _, err := r.Float32(ti.Name); err != nil {
					t.Fatalf("accepted tensor %q unreadable: %v", ti.Name, err)
				}
			} else if _, err := r.ReadRaw(ti.Name); err != nil {
				t.Fatalf("accepted tensor %q unreadable: %v", ti.Name, err)
			}
		}
		if total > int64(len(data)) {
			t.Fatalf("tensors claim %d bytes of a %d-byte file", total, len(data))
		}
	})
}
