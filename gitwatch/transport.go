package gitwatch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/plumbing/transport/server"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"

	"github.com/nbhosting/nbh-sync/manifest"
)

var installOnce sync.Once

// installLocalTransport replaces go-git's file:// transport, which runs the
// git-upload-pack binary, by an in-process server: the product never runs
// git. go-git's registry of transports is global, so this happens once, when
// the first Mirrors is made.
func installLocalTransport() {
	installOnce.Do(func() { client.InstallProtocol("file", localTransport{}) })
}

// localTransport serves file:// URLs from the repository on disk, bare or
// with a work tree, through go-git's server package.
type localTransport struct{}

func (localTransport) NewUploadPackSession(ep *transport.Endpoint, auth transport.AuthMethod) (transport.UploadPackSession, error) {
	st, err := loadLocal(ep.Path)
	if err != nil {
		return nil, err
	}
	s, err := server.NewClient(singleLoader{st}).NewUploadPackSession(ep, auth)
	if err != nil {
		return nil, err
	}
	return &uploadSession{UploadPackSession: s, st: st}, nil
}

func (localTransport) NewReceivePackSession(*transport.Endpoint, transport.AuthMethod) (transport.ReceivePackSession, error) {
	return nil, errors.New("push over file:// is not supported by nbh-sync")
}

// singleLoader hands the one storer already opened to the server.
type singleLoader struct{ st storer.Storer }

func (l singleLoader) Load(*transport.Endpoint) (storer.Storer, error) { return l.st, nil }

// uploadSession drops the "have" lines the repository does not know, as
// git-upload-pack does: after a force-push the mirror still has the old
// commit, and go-git's server would otherwise fail on it.
type uploadSession struct {
	transport.UploadPackSession
	st storer.Storer
}

func (s *uploadSession) UploadPack(ctx context.Context, req *packp.UploadPackRequest) (*packp.UploadPackResponse, error) {
	haves := req.Haves[:0:0]
	for _, h := range req.Haves {
		if s.st.HasEncodedObject(h) == nil {
			haves = append(haves, h)
		}
	}
	req.Haves = haves
	return s.UploadPackSession.UploadPack(ctx, req)
}

// loadLocal opens the storage of the repository at p: p itself when bare, or
// its .git directory (or the directory a .git file points to).
func loadLocal(p string) (storer.Storer, error) {
	gitDir, err := findGitDir(p)
	if err != nil {
		return nil, err
	}
	// A cache of its own: the repository is read for one fetch, then dropped.
	return storage(gitDir, cache.NewObjectLRUDefault()), nil
}

// findGitDir returns the git directory of the repository at p.
func findGitDir(p string) (string, error) {
	if isGitDir(p) {
		return p, nil
	}
	dot := filepath.Join(p, ".git")
	fi, err := os.Stat(dot)
	if err != nil {
		return "", fmt.Errorf("%s: %w", p, transport.ErrRepositoryNotFound)
	}
	if fi.IsDir() {
		return dot, nil
	}
	// A .git file (worktrees, submodules) says "gitdir: <path>".
	b, err := os.ReadFile(dot)
	if err != nil {
		return "", err
	}
	dir, ok := strings.CutPrefix(strings.TrimSpace(string(b)), "gitdir:")
	if !ok {
		return "", fmt.Errorf("%s: unreadable .git file", p)
	}
	dir = strings.TrimSpace(dir)
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(p, dir)
	}
	return dir, nil
}

func isGitDir(p string) bool {
	for _, f := range []string{"HEAD", "objects", "refs"} {
		if _, err := os.Stat(filepath.Join(p, f)); err != nil {
			return false
		}
	}
	return true
}

// DefaultTokenUser is the user name sent with a password or token when the
// credentials name none; GitHub, GitLab and Gitea all accept it with a
// personal access token.
const DefaultTokenUser = "oauth2"

// authFor builds the go-git auth method for url from creds, and returns the
// secrets it read so that errors can be scrubbed of them. A nil creds means
// go-git's defaults (anonymous https; ssh agent and ~/.ssh/known_hosts).
func authFor(url string, creds *manifest.Credentials) (transport.AuthMethod, []string, error) {
	if creds == nil {
		return nil, nil, nil
	}
	ep, err := transport.NewEndpoint(url)
	if err != nil {
		return nil, nil, err
	}
	switch ep.Protocol {
	case "http", "https":
		secret, err := readSecret(creds)
		if err != nil || secret == "" {
			return nil, nil, err
		}
		user := creds.Username
		if user == "" {
			user = DefaultTokenUser
		}
		return &githttp.BasicAuth{Username: user, Password: secret}, []string{secret}, nil
	case "ssh":
		if creds.SSHKeyFile == "" {
			return nil, nil, nil
		}
		user := ep.User
		if creds.Username != "" {
			user = creds.Username
		}
		if user == "" {
			user = "git"
		}
		keys, err := gitssh.NewPublicKeysFromFile(user, creds.SSHKeyFile, "")
		if err != nil {
			return nil, nil, fmt.Errorf("read ssh key %s: %w", creds.SSHKeyFile, err)
		}
		if creds.KnownHostsFile == "" {
			return nil, nil, errors.New("ssh: known-hosts-file is required with ssh-key-file")
		}
		cb, err := gitssh.NewKnownHostsCallback(creds.KnownHostsFile)
		if err != nil {
			return nil, nil, fmt.Errorf("read known hosts %s: %w", creds.KnownHostsFile, err)
		}
		keys.HostKeyCallback = cb
		return keys, nil, nil
	}
	return nil, nil, nil
}

// readSecret reads the https password or token the credentials point to.
func readSecret(creds *manifest.Credentials) (string, error) {
	switch {
	case creds.PasswordFile != "":
		b, err := os.ReadFile(creds.PasswordFile)
		if err != nil {
			return "", fmt.Errorf("read password file: %w", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	case creds.PasswordEnv != "":
		v, ok := os.LookupEnv(creds.PasswordEnv)
		if !ok {
			return "", fmt.Errorf("password env %s is not set", creds.PasswordEnv)
		}
		return v, nil
	}
	return "", nil
}

// redactedError hides secrets from an error's text while keeping its chain
// for errors.Is and errors.As.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redact returns err with every secret replaced by "***" and the user
// information of every URL cut out (RedactText): a URL refused by
// validation may still reach here (a caller that skipped it), and its
// user name may be a token.
func redact(err error, secrets []string) error {
	if err == nil {
		return err
	}
	msg := RedactText(err.Error())
	if len(secrets) == 0 && msg == err.Error() {
		return err
	}
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "***")
		}
	}
	return &redactedError{msg: msg, err: err}
}
