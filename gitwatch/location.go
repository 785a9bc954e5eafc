package gitwatch

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/nbhosting/nbh-sync/manifest"
)

// ConfigLocation is where the config repo is: a remote (or local repo) URL,
// the branch followed, and the folder of courses.yaml inside the repo.
type ConfigLocation struct {
	URL    string `json:"url"`
	Branch string `json:"branch"`
	// Dir is the slash-separated folder of courses.yaml in the repo, ""
	// for the top.
	Dir string `json:"dir,omitempty"`
}

// LocateConfig interprets the --config flag: a git URL (branch defaults to
// manifest.DefaultBranch), a bare repo path, or a folder inside a git work
// tree, whose committed state is used with that folder as the place of
// courses.yaml. For local paths an empty branch means the branch HEAD is on.
func LocateConfig(location, branch string) (ConfigLocation, error) {
	if URLPassword(location) {
		return ConfigLocation{}, fmt.Errorf("config repo %s: the URL carries a password, which process listings, logs and state would show: give it in a file or an environment variable instead (--config-password-file, --config-password-env)", RedactURL(location))
	}
	if URLUser(location) {
		return ConfigLocation{}, fmt.Errorf("config repo %s: the URL carries a user name, which may be a token and which process listings, logs, status and history would show: give --config %s with --config-username and --config-password-file (or --config-password-env)", RedactURL(location), RedactURL(location))
	}
	if !isLocal(location) || (len(location) > 7 && location[:7] == "file://") {
		if branch == "" {
			branch = manifest.DefaultBranch
		}
		return ConfigLocation{URL: location, Branch: branch}, nil
	}
	p := localPath(location)
	if isGitDir(p) {
		repo, err := git.PlainOpen(p)
		if err != nil {
			return ConfigLocation{}, fmt.Errorf("config repo %s: %w", p, err)
		}
		b, err := headBranch(repo, branch)
		return ConfigLocation{URL: p, Branch: b}, err
	}
	repo, err := git.PlainOpenWithOptions(p, &git.PlainOpenOptions{DetectDotGit: true, EnableDotGitCommonDir: true})
	if err != nil {
		return ConfigLocation{}, fmt.Errorf("config repo %s: not in a git repository: %w", p, err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		return ConfigLocation{}, fmt.Errorf("config repo %s: %w", p, err)
	}
	top := wt.Filesystem.Root()
	rel, err := filepath.Rel(top, p)
	if err != nil {
		return ConfigLocation{}, fmt.Errorf("config repo %s: %w", p, err)
	}
	dir := filepath.ToSlash(rel)
	if dir == "." {
		dir = ""
	}
	b, err := headBranch(repo, branch)
	url := top
	if common := linkedCommonDir(top); common != "" {
		url = common
	}
	return ConfigLocation{URL: url, Branch: b, Dir: dir}, err
}

// linkedCommonDir returns, for a linked work tree (git worktree add: its
// .git is a file naming a folder under the main repository's
// .git/worktrees), the main repository's git directory; "" for an ordinary
// work tree. The branches live there: a mirror of the linked work tree's
// own path finds none of them.
func linkedCommonDir(top string) string {
	b, err := os.ReadFile(filepath.Join(top, ".git"))
	if err != nil {
		return "" // a directory: an ordinary work tree
	}
	gitdir, ok := strings.CutPrefix(strings.TrimSpace(string(b)), "gitdir: ")
	if !ok {
		return ""
	}
	if !filepath.IsAbs(gitdir) {
		gitdir = filepath.Join(top, gitdir)
	}
	c, err := os.ReadFile(filepath.Join(gitdir, "commondir"))
	if err != nil {
		return "" // a submodule's .git file, say: its git dir holds its branches
	}
	common := strings.TrimSpace(string(c))
	if !filepath.IsAbs(common) {
		common = filepath.Join(gitdir, common)
	}
	return filepath.Clean(common)
}

func headBranch(repo *git.Repository, branch string) (string, error) {
	if branch != "" {
		return branch, nil
	}
	head, err := repo.Storer.Reference(plumbing.HEAD)
	if err != nil {
		return "", fmt.Errorf("read HEAD: %w", err)
	}
	if head.Type() != plumbing.SymbolicReference || !head.Target().IsBranch() {
		return "", errors.New("HEAD is detached: name a branch")
	}
	return head.Target().Short(), nil
}
