package gemm

import (
	"bytes"
	"os"
	"os/exec"
	"testing"
)

// TestGeneratedAsmUpToDate checks that kernel_amd64.s is what ./_generate writes.
func TestGeneratedAsmUpToDate(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the generator")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool in PATH")
	}
	want, err := exec.Command(goTool, "run", "./_generate").Output()
	if err != nil {
		t.Fatalf("go run ./_generate: %v", err)
	}
	have, err := os.ReadFile("kernel_amd64.s")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(have, want) {
		t.Fatal("kernel_amd64.s is stale: run go run ./_generate > kernel_amd64.s in pkg/gemm")
	}
}
