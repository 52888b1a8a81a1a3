package cliutil

import (
	"reflect"
	"testing"

	"github.com/urfave/cli/v2"
)

func TestInterspersedFlags(t *testing.T) {
	app := &cli.App{
		Flags: []cli.Flag{&cli.StringFlag{Name: "model", Aliases: []string{"m"}}},
		Commands: []*cli.Command{{
			Name:  "cat",
			Flags: []cli.Flag{&cli.StringFlag{Name: "out", Aliases: []string{"o"}}, &cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}}},
		}},
	}
	cases := []struct{ in, want []string }{
		{[]string{"x", "cat", "a", "b", "-o", "out", "-q"}, []string{"x", "cat", "-o", "out", "-q", "a", "b"}},
		{[]string{"x", "-m", "M", "cat", "a", "--out=o", "b"}, []string{"x", "-m", "M", "cat", "--out=o", "a", "b"}},
		{[]string{"x", "cat", "a", "-", "--", "-o", "c"}, []string{"x", "cat", "a", "-", "--", "-o", "c"}},
		{[]string{"x", "a", "-m", "M"}, []string{"x", "-m", "M", "a"}},
		{[]string{"x", "cat", "-q", "a", "b"}, []string{"x", "cat", "-q", "a", "b"}},
	}
	for _, c := range cases {
		if got := interspersed(app, c.in); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%v: got %v, want %v", c.in, got, c.want)
		}
	}
}
