package hub

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// URIScheme starts a hub URI (see the package doc for the syntax).
const URIScheme = "hf://"

// uriSyntax is quoted in URI errors.
const uriSyntax = "hf://datasets/ORG/NAME[@REV]/PATH or hf://ORG/NAME[@REV]/PATH"

// specialRefRE matches the revisions that contain '/' yet may be written unescaped in a URI
// (as huggingface_hub's HfFileSystem allows): refs/pr/N and refs/convert/NAME, followed by the
// '/' that starts the path.
var specialRefRE = regexp.MustCompile(`^(refs/pr/[0-9]+|refs/convert/[A-Za-z0-9_]+)/`)

// URI names one file of a hub repository: hf://datasets/ORG/NAME[@REV]/PATH for a dataset,
// hf://ORG/NAME[@REV]/PATH for a model.
type URI struct {
	Kind     Kind   // Model or Dataset
	Repo     string // "org/name"
	Revision string // branch, tag or commit hash; DefaultRevision when the URI names none
	Path     string // '/'-separated path of the file inside the repository
}

// String writes the URI back; ParseURI(u.String()) == u. The revision is left out when it is
// DefaultRevision and percent-encoded otherwise.
func (u URI) String() string {
	s := URIScheme
	if u.Kind == Dataset {
		s += "datasets/"
	}
	s += u.Repo
	if u.Revision != DefaultRevision && u.Revision != "" {
		s += "@" + url.PathEscape(u.Revision)
	}
	return s + "/" + u.Path
}

// IsURI reports whether s is meant as a hub URI (starts with hf://).
func IsURI(s string) bool { return strings.HasPrefix(s, URIScheme) }

// ParseURI parses hf://datasets/ORG/NAME[@REV]/PATH (a dataset file) or hf://ORG/NAME[@REV]/PATH
// (a model file). REV ends at the next '/' and is percent-decoded (a branch with '/' is written
// @a%2Fb), except that refs/pr/N and refs/convert/NAME are recognised as they are; it defaults
// to DefaultRevision. Spaces, and repositories without an organisation, are refused.
func ParseURI(s string) (URI, error) {
	bad := func(why string) (URI, error) {
		return URI{}, fmt.Errorf("hub URI %q: %s (expected %s)", s, why, uriSyntax)
	}
	rest, ok := strings.CutPrefix(s, URIScheme)
	if !ok {
		return bad("does not start with " + URIScheme)
	}
	u := URI{Kind: Model, Revision: DefaultRevision}
	if r, ok := strings.CutPrefix(rest, "datasets/"); ok {
		u.Kind, rest = Dataset, r
	} else if strings.HasPrefix(rest, "spaces/") {
		return bad("Spaces are not supported, only models and datasets")
	} else if strings.HasPrefix(rest, "models/") {
		return bad(`models are named without a "models/" prefix`)
	}
	org, rest, ok := strings.Cut(rest, "/")
	if !ok || org == "" {
		return bad("no repository ORG/NAME")
	}
	j := strings.IndexAny(rest, "@/")
	if j <= 0 {
		if j < 0 && rest != "" {
			return bad(fmt.Sprintf("no file path after the repository %q (a repository is ORG/NAME)", org+"/"+rest))
		}
		return bad("no repository ORG/NAME")
	}
	u.Repo, rest = org+"/"+rest[:j], rest[j:]
	if rest[0] == '@' {
		rest = rest[1:]
		var rev string
		if m := specialRefRE.FindStringSubmatch(rest); m != nil {
			rev, rest = m[1], rest[len(m[1]):]
		} else {
			k := strings.IndexByte(rest, '/')
			if k < 0 {
				return bad("no file path after the revision")
			}
			rev, rest = rest[:k], rest[k:]
		}
		dec, err := url.PathUnescape(rev)
		if err != nil {
			return bad(fmt.Sprintf("revision %q: %v", rev, err))
		}
		if err := checkRevision(dec); err != nil {
			return bad(err.Error())
		}
		u.Revision = dec
	}
	if err := checkRepo(u.Repo); err != nil {
		return bad(err.Error())
	}
	u.Path = strings.TrimPrefix(rest, "/")
	if u.Path == "" {
		return bad("no file path after the repository")
	}
	if err := checkRepoFile(u.Path); err != nil {
		return bad(err.Error())
	}
	return u, nil
}

// ResolveFile returns a local path for a data file argument using FromEnv: see
// Client.ResolveFile.
func ResolveFile(ctx context.Context, arg string) (string, error) {
	if !IsURI(arg) {
		return arg, nil
	}
	return FromEnv().ResolveFile(ctx, arg)
}

// ResolveFile returns a local path for a data file argument: arg unchanged unless it is a hub
// URI (hf://...), else the file's path in the hub cache, fetched there first if needed (see
// File). A local path is not checked: opening it reports a missing file.
func (c *Client) ResolveFile(ctx context.Context, arg string) (string, error) {
	if !IsURI(arg) {
		return arg, nil
	}
	u, err := ParseURI(arg)
	if err != nil {
		return "", err
	}
	return c.File(ctx, u.Kind, u.Repo, u.Revision, u.Path)
}

// File returns the local path of one file of a repository (kind Model or Dataset, repo
// "org/name" or "name", file a '/'-separated path in it) at rev (a branch, tag or commit hash;
// "" means DefaultRevision). A file already in the cache at rev is used without asking the hub
// (so offline mode works for it, and a moved branch is not noticed: name a commit to pin one);
// else the hub is asked for rev's commit and the file is downloaded into
// snapshots/<commit>/<file> of the repository's cache folder, resuming a partial download and
// checking size and checksum, as Download does for models. The returned path is the snapshot's
// symlink into blobs/.
func (c *Client) File(ctx context.Context, kind Kind, repo, rev, file string) (string, error) {
	if err := kind.check(); err != nil {
		return "", err
	}
	if err := checkRepo(repo); err != nil {
		return "", fmt.Errorf("hub: %w", err)
	}
	name := kind.display(repo)
	if rev == "" {
		rev = DefaultRevision
	}
	if err := checkRevision(rev); err != nil {
		return "", fmt.Errorf("hub: %s: %w", name, err)
	}
	if err := checkRepoFile(file); err != nil {
		return "", fmt.Errorf("hub: %s: %w", name, err)
	}
	if p, ok := CachedFile(c.CacheDir, kind, repo, rev, file); ok {
		return p, nil
	}
	if c.Offline {
		return "", fmt.Errorf("hub: %s@%s file %s: not in the hub cache %s, and %w", name, rev, file, c.CacheDir, errOffline)
	}
	info, err := c.revisionInfo(ctx, kind, repo, rev)
	if err != nil {
		return "", err
	}
	if len(info.Siblings) > 0 {
		names := make([]string, len(info.Siblings))
		for i, s := range info.Siblings {
			names[i] = s.RFilename
		}
		if !contains(names, file) {
			what := fmt.Sprintf("%s@%s file %s", name, rev, file)
			return "", &HubError{Status: http.StatusNotFound, Code: "EntryNotFound", What: what,
				Msg: fmt.Sprintf("hub %s: %s: not in the repository; %s", c.Endpoint, what, nearFiles(names, file))}
		}
	}
	if err := c.fetch(ctx, kind, repo, info.SHA, file); err != nil {
		return "", err
	}
	root := filepath.Join(c.CacheDir, FolderName(kind, repo))
	if err := writeRef(root, rev, info.SHA); err != nil {
		return "", err
	}
	return filepath.Join(root, "snapshots", info.SHA, filepath.FromSlash(file)), nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// nearFiles lists a few files of a repository for an error message, those with the wanted
// file's extension first.
func nearFiles(names []string, want string) string {
	ext := path.Ext(want)
	sort.SliceStable(names, func(i, j int) bool {
		ei, ej := ext != "" && path.Ext(names[i]) == ext, ext != "" && path.Ext(names[j]) == ext
		if ei != ej {
			return ei
		}
		return names[i] < names[j]
	})
	const show = 8
	s := "it has " + strings.Join(names[:min(len(names), show)], ", ")
	if len(names) > show {
		s += fmt.Sprintf(" and %d more", len(names)-show)
	}
	return s
}
