package cliutil

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
)

func TestExitCodes(t *testing.T) {
	cases := []struct {
		err  error
		code int
		msg  string
	}{
		{nil, 0, ""},
		{fmt.Errorf("writing: %w", syscall.EPIPE), 0, ""},
		{Usagef("bad --k %d", 0), 2, "x: bad --k 0 (see x --help)"},
		{errors.New("data.parquet row 3: broken\nsecond line"), 1, "x: data.parquet row 3: broken second line"},
		{fmt.Errorf("step 5: %w", context.Canceled), 130, "x: interrupted"},
	}
	for _, c := range cases {
		var buf bytes.Buffer
		if got := exitCode("x", c.err, &buf); got != c.code {
			t.Errorf("%v: exit %d, want %d", c.err, got, c.code)
		}
		if strings.TrimSpace(buf.String()) != c.msg {
			t.Errorf("%v: printed %q, want %q", c.err, buf.String(), c.msg)
		}
	}
}

func TestProgressLines(t *testing.T) {
	var buf bytes.Buffer
	p := &Progress{W: &buf, Name: "tok", Unit: "rows", Total: 10, Interval: 0}
	p.Add(5)
	p.Done()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "tok: 5 rows/10 (50.0%)") || !strings.Contains(lines[0], "ETA") {
		t.Fatalf("progress output %q", buf.String())
	}
	q := &Progress{W: &buf, Quiet: true}
	buf.Reset()
	q.Add(1)
	q.Done()
	if buf.Len() != 0 {
		t.Fatal("quiet progress printed")
	}
}
