// Package pipelines holds the Makefiles and scripts that chain the cpo tools (demo.sh,
// dolly.mk, wiki.mk, cron-run.sh, slurm/). It has no Go code of its own; its tests exercise the
// scripts.
package pipelines
