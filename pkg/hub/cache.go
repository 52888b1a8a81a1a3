// Package hub resolves a model argument the way users of Hugging Face tools expect: a local
// checkpoint directory, else a hub id ("gpt2-xl", "openlm-research/open_llama_3b", with an
// optional "@revision") found in the standard Hugging Face cache, else downloaded into that
// cache with the same layout huggingface_hub uses, so either side finds what the other fetched.
// It also fetches single files of model and dataset repositories (Client.File), named on
// command lines by hf:// URIs (ParseURI, ResolveFile), e.g. the paper's Dolly data:
//
//	hf://datasets/databricks/databricks-dolly-15k/databricks-dolly-15k.jsonl
//
// URI syntax (the form huggingface_hub's HfFileSystem reads, models and datasets only):
//
//	hf://datasets/ORG/NAME[@REV]/PATH   a file of the dataset repository ORG/NAME
//	hf://ORG/NAME[@REV]/PATH            a file of the model repository ORG/NAME
//
// ORG and NAME are one path segment each (letters, digits, '.', '_', '-'); a repository without
// an organisation cannot be named by URI (the hub has moved those under one). REV is a branch,
// tag or 40-hex commit hash, default "main"; it ends at the next '/', so a branch containing
// '/' is written percent-encoded (@refs%2Fpr%2F1), except that refs/pr/N and refs/convert/NAME
// are recognised as they are. PATH is the file's path inside the repository ('/'-separated, no
// "." or ".." segments, no trailing '/'). A file found in the cache at REV is used without asking
// the hub, so HF_HUB_OFFLINE=1 works for anything fetched before.
//
// Cache layout (huggingface_hub's): under the cache directory, a model repository "org/name"
// lives in models--org--name/ and a dataset repository in datasets--org--name/, each with
//
//	refs/<revision>             the commit hash a branch or tag pointed to (no newline)
//	blobs/<etag>                file contents, named by their ETag (sha256 for LFS files,
//	                            the git blob sha1 for small files)
//	blobs/<etag>.incomplete     a partial download, resumed with an HTTP Range request
//	snapshots/<commit>/<file>   relative symlinks to ../../blobs/<etag>
//
// The cache directory is $HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub,
// else ~/.cache/huggingface/hub. The endpoint is $HF_ENDPOINT (default https://huggingface.co),
// the token $HF_TOKEN (else the file $HF_HOME/token), sent only to the endpoint's host as
// "Authorization: Bearer" and never printed. HF_HUB_OFFLINE=1 forbids any network access.
// The hub is asked GET {endpoint}/api/models/{repo}/revision/{rev} (or /api/datasets/...) for
// the commit and file list, and files come from {endpoint}/{repo}/resolve/{commit}/{file} (or
// {endpoint}/datasets/{repo}/resolve/...).
//
// Downloads of one file take the lock .locks/<folder>/<etag>.lock (flock), folder being
// models--org--name or datasets--org--name, as huggingface_hub does, so concurrent processes
// do not write one blob at the same time.
//
// The weights fetched are model.safetensors (or model.safetensors.index.json and its shards),
// else pytorch_model.bin (or its index and shards), with config.json and the tokenizer files.
package hub

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Env names read by FromEnv.
const (
	EnvEndpoint = "HF_ENDPOINT"
	EnvToken    = "HF_TOKEN"
	EnvHome     = "HF_HOME"
	EnvCache    = "HF_HUB_CACHE"
	EnvOffline  = "HF_HUB_OFFLINE"
)

// DefaultEndpoint is the Hugging Face hub.
const DefaultEndpoint = "https://huggingface.co"

// DefaultRevision is the branch used when an id names none.
const DefaultRevision = "main"

var (
	repoPart   = `[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9_])?`
	repoRE     = regexp.MustCompile(`^` + repoPart + `(?:/` + repoPart + `)?$`)
	commitRE   = regexp.MustCompile(`^[0-9a-f]{40}$`)
	sha256RE   = regexp.MustCompile(`^[0-9a-f]{64}$`)
	errOffline = errors.New("offline mode (HF_HUB_OFFLINE) forbids downloading")
)

// ParseID splits "org/name@revision" into the repository id and the revision (DefaultRevision
// when absent) and checks both.
func ParseID(arg string) (repo, rev string, err error) {
	repo, rev = arg, DefaultRevision
	if i := strings.LastIndexByte(arg, '@'); i >= 0 {
		repo, rev = arg[:i], arg[i+1:]
	}
	if checkRepo(repo) != nil {
		return "", "", fmt.Errorf("%q is not a hub model id (expected name or org/name, optionally @revision)", arg)
	}
	if err := checkRevision(rev); err != nil {
		return "", "", fmt.Errorf("%q: %w", arg, err)
	}
	return repo, rev, nil
}

func checkRevision(rev string) error {
	if rev == "" || strings.HasPrefix(rev, "/") || strings.HasSuffix(rev, "/") || strings.ContainsAny(rev, "\\\x00") {
		return fmt.Errorf("invalid revision %q", rev)
	}
	for _, part := range strings.Split(rev, "/") {
		if part == "" || part == "." || part == ".." {
			return fmt.Errorf("invalid revision %q", rev)
		}
	}
	return nil
}

// checkRepoFile rejects file names that would escape the snapshot directory.
func checkRepoFile(name string) error {
	if name == "" || strings.HasPrefix(name, "/") || strings.ContainsAny(name, "\\\x00") {
		return fmt.Errorf("invalid file name %q", name)
	}
	for _, part := range strings.Split(name, "/") {
		if part == "" || part == "." || part == ".." {
			return fmt.Errorf("invalid file name %q", name)
		}
	}
	return nil
}

// Kind is the type of a hub repository.
type Kind string

// The repository kinds this package fetches from.
const (
	Model   Kind = "model"
	Dataset Kind = "dataset"
)

// plural is the kind's word in cache folders and API paths ("models", "datasets").
func (k Kind) plural() string { return string(k) + "s" }

func (k Kind) check() error {
	if k != Model && k != Dataset {
		return fmt.Errorf("hub: unknown repository kind %q (want %q or %q)", string(k), Model, Dataset)
	}
	return nil
}

// display names a repository in messages as its URI does: "org/name" for a model,
// "datasets/org/name" for a dataset.
func (k Kind) display(repo string) string {
	if k == Dataset {
		return "datasets/" + repo
	}
	return repo
}

// RepoFolderName returns the cache folder of a model repository: "org/name" →
// "models--org--name".
func RepoFolderName(repo string) string { return FolderName(Model, repo) }

// FolderName returns the cache folder of a repository of the given kind: "org/name" →
// "models--org--name" or "datasets--org--name".
func FolderName(kind Kind, repo string) string {
	return kind.plural() + "--" + strings.ReplaceAll(repo, "/", "--")
}

// checkRepo checks a repository id ("name" or "org/name").
func checkRepo(repo string) error {
	if !repoRE.MatchString(repo) || strings.Contains(repo, "--") || strings.Contains(repo, "..") {
		return fmt.Errorf("invalid repository id %q (expected name or org/name)", repo)
	}
	return nil
}

// DefaultCacheDir returns the hub cache directory from the environment (see the package doc).
func DefaultCacheDir() string {
	if d := os.Getenv(EnvCache); d != "" {
		return d
	}
	return filepath.Join(hfHome(), "hub")
}

func hfHome() string {
	if d := os.Getenv(EnvHome); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "huggingface")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = "."
	}
	return filepath.Join(home, ".cache", "huggingface")
}

// envTrue reads a boolean environment variable as huggingface_hub does.
func envTrue(name string) bool {
	switch strings.ToUpper(strings.TrimSpace(os.Getenv(name))) {
	case "1", "ON", "YES", "TRUE":
		return true
	}
	return false
}

// CachedSnapshot returns the snapshot directory of repo at rev in cacheDir when it holds a
// complete checkpoint (see Complete). rev may be a branch, a tag or a commit hash.
func CachedSnapshot(cacheDir, repo, rev string) (string, bool) {
	root := filepath.Join(cacheDir, RepoFolderName(repo))
	commit, ok := cachedCommit(root, rev)
	if !ok {
		return "", false
	}
	dir := filepath.Join(root, "snapshots", commit)
	if Complete(dir) != nil {
		return "", false
	}
	return dir, true
}

// CachedFile returns the snapshot path of file (a '/'-separated path in the repository) of
// the repository at rev in cacheDir when the file is there. rev may be a branch, a tag or a
// commit hash.
func CachedFile(cacheDir string, kind Kind, repo, rev, file string) (string, bool) {
	if kind.check() != nil || checkRepo(repo) != nil || checkRevision(rev) != nil || checkRepoFile(file) != nil {
		return "", false
	}
	root := filepath.Join(cacheDir, FolderName(kind, repo))
	commit, ok := cachedCommit(root, rev)
	if !ok {
		return "", false
	}
	p := filepath.Join(root, "snapshots", commit, filepath.FromSlash(file))
	if !isFile(p) {
		return "", false
	}
	return p, true
}

// cachedCommit returns the snapshot name of rev under a repository's cache folder: rev itself
// when it is a commit hash, else what refs/<rev> holds.
func cachedCommit(root, rev string) (string, bool) {
	if commitRE.MatchString(rev) {
		return rev, true
	}
	b, err := os.ReadFile(filepath.Join(root, "refs", filepath.FromSlash(rev)))
	if err != nil {
		return "", false
	}
	commit := strings.TrimSpace(string(b))
	if !commitRE.MatchString(commit) && checkRevision(commit) != nil {
		return "", false
	}
	return commit, true
}

// weightLayouts are the weight files looked for, in order of preference: safetensors, then
// PyTorch's (read by pkg/checkpoint without executing the pickle). Each is a single file and
// the index of its sharded form.
var weightLayouts = [][2]string{
	{singleWeights, indexWeights},
	{"pytorch_model.bin", "pytorch_model.bin.index.json"},
}

// Complete checks that dir holds a loadable checkpoint: config.json and weights
// (model.safetensors, or its index and every shard it names; else the same for
// pytorch_model.bin).
func Complete(dir string) error {
	if !isFile(filepath.Join(dir, "config.json")) {
		return fmt.Errorf("%s: no config.json", dir)
	}
	var firstErr error
	for _, l := range weightLayouts {
		if isFile(filepath.Join(dir, l[0])) {
			return nil
		}
		if !isFile(filepath.Join(dir, l[1])) {
			continue
		}
		shards, err := indexShards(filepath.Join(dir, l[1]))
		if err == nil {
			for _, s := range shards {
				if !isFile(filepath.Join(dir, s)) {
					err = fmt.Errorf("%s: shard %s of %s is missing", dir, s, l[1])
					break
				}
			}
		}
		if err == nil {
			return nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		return firstErr
	}
	return fmt.Errorf("%s: no weights (%s, %s, %s or %s)", dir, weightLayouts[0][0], weightLayouts[0][1], weightLayouts[1][0], weightLayouts[1][1])
}

func isFile(p string) bool {
	st, err := os.Stat(p) // follows the snapshot symlinks
	return err == nil && st.Mode().IsRegular()
}
