// Package kernels holds the CUDA sources of the GPU backend (one kernel family per .cu
// file), their compiled fatbins (build/<family>.fatbin: SASS for sm_80 and sm_90 and
// compute_80 PTX, built by build.sh with nvcc 11.8) and manifest.txt, the sha256 of every
// source and output. This Go file only embeds the compiled output so that pkg/cuda can
// load it with cuModuleLoadData; it needs no GPU and no CUDA library.
package kernels

import "embed"

// FS holds build/<family>.fatbin for every family and manifest.txt.
//
//go:embed build/*.fatbin manifest.txt
var FS embed.FS
