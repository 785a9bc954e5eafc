package gitwatch

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
)

// checkOwner refuses a local repository that another user owns, as git
// does for a directory not marked safe.directory: its folder, and its git
// directory wherever a .git file points, must belong to the user nbh-sync
// runs as. Otherwise whoever owns the folder chooses what nbh-sync reads —
// a .git file may point at any repository on the host, including one only
// nbh-sync's user may read — and nbh-sync checks it out where students see
// it. safe lists folders trusted whatever their owner ("*": all).
func checkOwner(p string, safe []string) error {
	if slices.Contains(safe, "*") {
		return nil
	}
	gitDir, err := findGitDir(p)
	if err != nil {
		return nil // not a repository: the fetch says so
	}
	euid := os.Geteuid()
	for _, dir := range []string{p, gitDir} {
		if slices.ContainsFunc(safe, func(s string) bool { return filepath.Clean(s) == filepath.Clean(dir) }) {
			continue
		}
		fi, err := os.Stat(dir)
		if err != nil {
			return fmt.Errorf("local repository %s: %w", p, err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok || int(st.Uid) == euid {
			continue
		}
		what := "local repository"
		if dir != p {
			what = fmt.Sprintf("git directory of local repository %s:", p)
		}
		return fmt.Errorf("%s %s is owned by %s, not by %s that nbh-sync runs as: refused, as git refuses a directory that is not safe.directory (chown it, or trust it with --safe-directory %s)",
			what, dir, userName(int(st.Uid)), userName(euid), dir)
	}
	return nil
}

// userName is "uid N (name)", or "uid N" when N has no account.
func userName(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return fmt.Sprintf("uid %d (%s)", uid, u.Username)
	}
	return fmt.Sprintf("uid %d", uid)
}
