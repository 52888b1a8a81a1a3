package train

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cpo-toolchain/cpo/pkg/plot"
	"github.com/cpo-toolchain/cpo/pkg/safetensors"
)

// DefaultPlotKeys are the curves PlotMetrics draws when none are named.
var DefaultPlotKeys = []string{"loss", "rewards/accuracies", "rewards/margins", "rewards/chosen", "rewards/rejected", "grad_norm", "lr"}

// ReadMetrics reads a metrics JSONL file (one object per step, as Run writes) into one series
// per numeric key, indexed by step. Lines without a numeric step are skipped.
func ReadMetrics(path string) (map[string]plot.Series, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]plot.Series{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	line := 0
	for sc.Scan() {
		line++
		var row map[string]any
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			return nil, fmt.Errorf("%s line %d: %w", path, line, err)
		}
		step, ok := row["step"].(float64)
		if !ok {
			continue
		}
		for k, v := range row {
			y, ok := v.(float64)
			if !ok || k == "step" {
				if s, isStr := v.(string); isStr && (s == "NaN" || strings.HasSuffix(s, "Inf")) {
					y, ok = math.NaN(), true
				}
				if !ok || k == "step" {
					continue
				}
			}
			s := out[k]
			s.X = append(s.X, step)
			s.Y = append(s.Y, y)
			out[k] = s
		}
	}
	return out, sc.Err()
}

// PlotMetrics draws, for each key, the curves of every metrics file (one series per file, named
// by the file) against the step, into outDir/<key>.png ('/' in keys becomes '_'). It returns the
// files written. A named key that no file has is an error; of the default keys, those absent
// are skipped, but files with none of them (empty, say) are an error.
func PlotMetrics(files, keys []string, outDir string) ([]string, error) {
	defaults := len(keys) == 0
	if defaults {
		keys = DefaultPlotKeys
	}
	runs := make([]map[string]plot.Series, len(files))
	for i, f := range files {
		m, err := ReadMetrics(f)
		if err != nil {
			return nil, err
		}
		runs[i] = m
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, err
	}
	var written []string
	for _, k := range keys {
		var series []plot.Series
		for i, m := range runs {
			if s, ok := m[k]; ok {
				s.Name = strings.TrimSuffix(filepath.Base(files[i]), ".jsonl")
				series = append(series, s)
			}
		}
		if len(series) == 0 {
			if defaults {
				continue // a default key the run does not have (mle has no rewards)
			}
			return written, fmt.Errorf("no metrics file has %q", k)
		}
		sort.SliceStable(series, func(a, b int) bool { return series[a].Name < series[b].Name })
		png, err := plot.Lines(k, "step", k, series)
		if err != nil {
			return written, fmt.Errorf("plot %s: %w", k, err)
		}
		path := filepath.Join(outDir, strings.ReplaceAll(k, "/", "_")+".png")
		if err := safetensors.AtomicWrite(path, func(w io.Writer) error {
			_, err := w.Write(png)
			return err
		}); err != nil {
			return written, err
		}
		written = append(written, path)
	}
	if len(written) == 0 {
		return nil, fmt.Errorf("nothing to draw: %s hold no steps with the metrics %s", strings.Join(files, ", "), strings.Join(keys, ", "))
	}
	return written, nil
}
