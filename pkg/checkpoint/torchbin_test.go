package checkpoint

import (
	"archive/zip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// torchZip writes a torch.save-style archive with the given data.pkl and storages.
func torchZip(t *testing.T, pkl string, storages map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, TorchFileName))
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	put := func(name string, b []byte) {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
	}
	put("archive/data.pkl", []byte(pkl))
	for k, b := range storages {
		put("archive/data/"+k, b)
	}
	zw.Close()
	f.Close()
	return dir
}

// tensorPickle is the protocol-2 pickle of {"w": tensor of shape (n,) at offset off of a
// FloatStorage of numel elements, key "0"}.
func tensorPickle(n, off, numel byte) string {
	return "\x80\x02}q\x00(X\x01\x00\x00\x00wq\x01ctorch._utils\n_rebuild_tensor_v2\nq\x02((X\x07\x00\x00\x00storageq\x03ctorch\nFloatStorage\nq\x04X\x01\x00\x00\x000q\x05X\x03\x00\x00\x00cpuq\x06K" +
		string(rune(numel)) + "tq\x07QK" + string(rune(off)) + "K" + string(rune(n)) + "\x85q\x08K\x01\x85q\t\x89ccollections\nOrderedDict\nq\n)Rq\x0btq\x0cRq\ru."
}

func TestTorchBinReader(t *testing.T) {
	dir := torchZip(t, tensorPickle(3, 1, 4), map[string][]byte{"0": {0, 0, 0x80, 0x3f, 0, 0, 0, 0x40, 0, 0, 0x40, 0x40, 0, 0, 0x80, 0x40}})
	s, err := openTorchDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got := make([]float32, 3)
	if err := s.ReadFloat32("w", got); err != nil {
		t.Fatal(err)
	}
	if got[0] != 2 || got[1] != 3 || got[2] != 4 {
		t.Errorf("got %v want [2 3 4]", got)
	}
}

func TestTorchBinBadInput(t *testing.T) {
	four := map[string][]byte{"0": make([]byte, 16)}
	cases := []struct {
		name, pkl string
		st        map[string][]byte
		want      string
	}{
		{"code execution", "\x80\x02cos\nsystem\nX\x02\x00\x00\x00lsq\x00\x85R.", nil, "refusing pickle global os.system"},
		{"stack global", "\x80\x04\x8c\x08builtins\x8c\x04eval\x93.", nil, "refusing pickle global builtins.eval"},
		{"truncated", tensorPickle(3, 1, 4)[:40], four, "malformed pickle"},
		{"view past storage", tensorPickle(4, 1, 4), four, "view reaches element 4 of a storage of 4"},
		{"storage size", tensorPickle(3, 0, 5), four, "holds 16 bytes, expected 5 elements"},
		{"missing storage", tensorPickle(3, 0, 4), nil, `storage "0" missing`},
		{"not a dict", "\x80\x02K\x01.", nil, "not a state dict"},
		{"unknown opcode", "\x80\x02\xff.", nil, "unsupported opcode"},
	}
	for _, c := range cases {
		_, err := openTorchDir(torchZip(t, c.pkl, c.st))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, TorchFileName), []byte("\x80\x02legacy pickle"), 0o644)
	if _, err := openTorchDir(dir); err == nil || !strings.Contains(err.Error(), "legacy format") {
		t.Errorf("legacy: %v", err)
	}
}

// FuzzUnpickle: the restricted unpickler never panics, whatever the bytes.
func FuzzUnpickle(f *testing.F) {
	f.Add([]byte(tensorPickle(3, 1, 4)))
	f.Add([]byte("\x80\x02}q\x00(X\x01\x00\x00\x00aK\x01X\x01\x00\x00\x00b]q\x01(K\x01K\x02eu."))
	f.Add([]byte("\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00(K\x01K\x02d\x94."))
	f.Fuzz(func(t *testing.T, data []byte) {
		unpickle(data)
	})
}
