package cliutil

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// interspersed moves flags that follow positional arguments in front of them, so that
// `cpo-shard cat a.parquet b.parquet -o out.parquet` works as users expect (urfave/cli stops
// parsing flags at the first positional argument). Subcommand names are followed down the
// command tree; a flag's value is carried along unless the flag is boolean or written --f=v;
// everything after "--" stays positional.
func interspersed(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	out := []string{args[0]}
	flags := app.Flags
	cmds := app.Commands
	i := 1
	// Walk down to the deepest subcommand named in the arguments (flags before it stay put).
	for i < len(args) {
		a := args[i]
		if strings.HasPrefix(a, "-") {
			out = append(out, a)
			if takesValue(flags, a) && i+1 < len(args) {
				out = append(out, args[i+1])
				i++
			}
			i++
			continue
		}
		var next *cli.Command
		for _, c := range cmds {
			if c.HasName(a) {
				next = c
			}
		}
		if next == nil {
			break
		}
		out = append(out, a)
		flags, cmds = next.Flags, next.Subcommands
		i++
	}
	var pos []string
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i:]...)
			break
		}
		if strings.HasPrefix(a, "-") && a != "-" {
			out = append(out, a)
			if takesValue(flags, a) && i+1 < len(args) {
				out = append(out, args[i+1])
				i++
			}
			continue
		}
		pos = append(pos, a)
	}
	return append(out, pos...)
}

// takesValue reports whether the flag written as arg (e.g. "-o", "--out", "--out=x") consumes
// the next argument as its value.
func takesValue(flags []cli.Flag, arg string) bool {
	name := strings.TrimLeft(arg, "-")
	if strings.Contains(name, "=") {
		return false
	}
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				_, isBool := f.(*cli.BoolFlag)
				return !isBool
			}
		}
	}
	return false // unknown flags are left for urfave/cli to report
}
