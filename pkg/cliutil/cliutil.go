// Package cliutil holds what every cpo-* tool shares: the version string, the command-line
// conventions (output flags, exit codes, one-line errors), progress reports on stderr, and
// graceful handling of a closed stdout and of SIGINT/SIGTERM.
//
// Exit codes: 0 success (also when stdout was closed early, as by `| head`), 1 a runtime error,
// 2 a usage error (bad flag or argument), 130 interrupted.
package cliutil

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/cpo-toolchain/cpo/pkg/shard"
)

// Version and Commit are set at build time by the Makefile:
// -ldflags "-X github.com/cpo-toolchain/cpo/pkg/cliutil.Version=... -X ...Commit=...".
var (
	Version = "dev"
	Commit  = ""
)

// VersionString is what --version prints.
func VersionString() string {
	c := Commit
	if c == "" {
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" {
					c = s.Value
				}
			}
		}
	}
	if c == "" {
		c = "unknown"
	}
	return fmt.Sprintf("%s (commit %s, %s %s/%s)", Version, c, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// UsageError marks an error as a usage error (exit status 2).
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }
func (e UsageError) Unwrap() error { return e.Err }

// Usagef returns a usage error.
func Usagef(format string, a ...any) error { return UsageError{fmt.Errorf(format, a...)} }

// NewApp returns a cli.App with the project's conventions set: version, help on stderr for
// usage errors, and errors left to Run to print.
func NewApp(name, usage, description string) *cli.App {
	cli.VersionPrinter = func(c *cli.Context) { fmt.Fprintf(c.App.Writer, "%s %s\n", c.App.Name, VersionString()) }
	return &cli.App{
		Name:                   name,
		Usage:                  usage,
		Description:            description,
		Version:                VersionString(),
		UseShortOptionHandling: true,
		EnableBashCompletion:   false,
		ExitErrHandler:         func(*cli.Context, error) {}, // Run prints and exits
		OnUsageError: func(c *cli.Context, err error, isSub bool) error {
			return UsageError{err}
		},
		CommandNotFound: func(c *cli.Context, cmd string) {
			// urfave/cli also lands here when a subcommand lacks a required flag: it then
			// shows the subcommand's help for its first argument, and returns the
			// required-flag error itself, which Run reports. Only an unknown command at the
			// top level is ours to report.
			if c.Command != nil && c.Command.Name != "" && c.Command.Name != c.App.Name {
				return
			}
			fmt.Fprintf(os.Stderr, "%s: no command %q (see %s --help)\n", c.App.Name, cmd, c.App.Name)
			os.Exit(2)
		},
	}
}

// Run runs the app with os.Args and exits with the project's exit codes. It never returns.
func Run(app *cli.App) {
	// With SIGPIPE ignored, writes to a closed pipe return EPIPE, which ends the run quietly.
	signal.Ignore(syscall.SIGPIPE)
	err := app.Run(interspersed(app, os.Args))
	os.Exit(exitCode(app.Name, err, os.Stderr))
}

func exitCode(name string, err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, syscall.EPIPE) {
		return 0
	}
	var ue UsageError
	if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "flag provided but not defined") ||
		strings.HasPrefix(err.Error(), "Required flag") || strings.Contains(err.Error(), "invalid value") {
		fmt.Fprintf(stderr, "%s: %s (see %s --help)\n", name, oneLine(err.Error()), name)
		return 2
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, ErrInterrupted) {
		fmt.Fprintf(stderr, "%s: interrupted\n", name)
		return 130
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		if msg := oneLine(err.Error()); msg != "" {
			fmt.Fprintf(stderr, "%s: %s\n", name, msg)
		}
		return ec.ExitCode()
	}
	fmt.Fprintf(stderr, "%s: %s\n", name, oneLine(err.Error()))
	return 1
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

// ErrInterrupted is returned by work stopped by SIGINT or SIGTERM.
var ErrInterrupted = errors.New("interrupted")

// SignalContext returns a context cancelled on the first SIGINT or SIGTERM, so the work can
// stop cleanly (remove temporaries, save a checkpoint). A second signal more than 3 s after the
// first kills the process at once; signals within those 3 s count as the same interruption,
// since `timeout -s INT` and a terminal's Ctrl-C signal the process and then its group.
func SignalContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-ch
		first := time.Now()
		cancel()
		fmt.Fprintln(os.Stderr, "interrupted: finishing cleanly (signal again after 3 s to kill at once)")
		for range ch {
			if time.Since(first) > 3*time.Second {
				os.Exit(130)
			}
		}
	}()
	return ctx, cancel
}

// IsTerminal reports whether f is a terminal.
func IsTerminal(f *os.File) bool { return shard.IsTerminal(f) }

// OutputFlags are the flags of every tool that writes shards.
func OutputFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "output: a .parquet file, or a directory of part-NNNNN.parquet shards (replaced as a whole when complete); default: one Parquet stream on stdout"},
		&cli.Int64Flag{Name: "shard-rows", Usage: "with --out DIR: rows per shard file (0: a single part)"},
		&cli.IntFlag{Name: "row-group-rows", Value: shard.DefaultRowGroupRows, Usage: "rows per Parquet row group; stdout is flushed one row group at a time"},
		&cli.IntFlag{Name: "zstd-level", Value: shard.DefaultZstdLevel, Usage: "zstd compression level: 1 fastest, 3 default, 7 better, 11 best"},
	}
}

// ShardOptions reads the OutputFlags of c.
func ShardOptions(c *cli.Context) shard.Options {
	return shard.Options{
		RowGroupRows: c.Int("row-group-rows"),
		ShardRows:    c.Int64("shard-rows"),
		ZstdLevel:    c.Int("zstd-level"),
		Writer:       c.App.Name + " " + Version,
	}
}

// QuietFlag silences progress reports.
var QuietFlag = &cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress reports on stderr"}

// Progress reports the progress of long work on stderr: on a terminal a line rewritten in
// place, otherwise a line every Interval. Safe for use from one goroutine.
type Progress struct {
	W        io.Writer
	Name     string
	Unit     string
	Total    int64 // 0 if unknown
	Interval time.Duration
	Quiet    bool

	n, extra int64
	start    time.Time
	last     time.Time
	tty      bool
}

// NewProgress starts a progress report for name counting unit (e.g. "rows"), total if known.
func NewProgress(c *cli.Context, name, unit string, total int64) *Progress {
	p := &Progress{W: os.Stderr, Name: name, Unit: unit, Total: total, Interval: 10 * time.Second, start: time.Now()}
	p.tty = IsTerminal(os.Stderr)
	if p.tty {
		p.Interval = 250 * time.Millisecond
	}
	if c != nil {
		p.Quiet = c.Bool("quiet")
	}
	p.last = p.start
	return p
}

// Add counts n more units.
func (p *Progress) Add(n int64) {
	p.n += n
	if now := time.Now(); now.Sub(p.last) >= p.Interval {
		p.last = now
		p.print(false)
	}
}

// Count returns the units counted so far.
func (p *Progress) Count() int64 { return p.n }

func (p *Progress) print(final bool) {
	if p.Quiet {
		return
	}
	el := time.Since(p.start).Seconds()
	rate := float64(p.n) / max(el, 1e-9)
	msg := fmt.Sprintf("%s: %d %s", p.Name, p.n, p.Unit)
	if p.Total > 0 {
		msg += fmt.Sprintf("/%d (%.1f%%)", p.Total, 100*float64(p.n)/float64(p.Total))
	}
	msg += fmt.Sprintf(", %.1f %s/s, %s elapsed", rate, p.Unit, fmtDur(el))
	if p.Total > 0 && p.n > 0 && !final {
		msg += ", ETA " + fmtDur(float64(p.Total-p.n)/rate)
	}
	if p.tty {
		fmt.Fprintf(p.W, "\r\033[K%s", msg)
		if final {
			fmt.Fprintln(p.W)
		}
	} else {
		fmt.Fprintln(p.W, msg)
	}
}

// Done prints the final line.
func (p *Progress) Done() { p.print(true) }

func fmtDur(s float64) string {
	d := time.Duration(s * float64(time.Second)).Round(time.Second)
	return d.String()
}
