package images

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// The engine API pushes and pulls but cannot delete from a registry: old
// builds are deleted through the registry's own HTTP API (Distribution's
// /v2/). A DELETE of a manifest untags it and makes its layers garbage;
// the registry frees their space at its next garbage-collect
// (`registry garbage-collect config.yml`, run by its admin), so what a
// prune reports is the space that collect can reclaim. The registry must
// allow deletes (storage.delete.enabled, or
// REGISTRY_STORAGE_DELETE_ENABLED=true); one that does not answers 405,
// which is reported, and nothing else changes.

// Registry is a client of a registry's HTTP API. Make one with
// NewRegistry.
type Registry struct {
	host  string
	creds func() (user, password string, err error)
	http  *http.Client

	mu     sync.Mutex
	scheme string // https, or http for a loopback registry without TLS
}

// NewRegistry returns a client of the registry at host (host[:port]).
// creds, when set, gives the user and password sent with each request
// (HTTP basic authentication, what Distribution's htpasswd auth wants;
// registries that only hand out bearer tokens are not supported). It
// trusts the system's roots and the CAs the engine trusts for that
// registry (/etc/docker/certs.d/HOST/*.crt), so one setup serves both.
func NewRegistry(host string, creds func() (string, string, error)) *Registry {
	return &Registry{host: host, creds: creds, http: &http.Client{Timeout: time.Minute,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: certsD(host)}, Proxy: http.ProxyFromEnvironment}}}
}

// certsD returns the system's roots plus the registry's CAs in the
// engine's certs.d; nil (the system's roots) when there are none.
func certsD(host string) *x509.CertPool {
	files, _ := filepath.Glob(filepath.Join("/etc/docker/certs.d", host, "*.crt"))
	if len(files) == 0 {
		return nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil {
			pool.AppendCertsFromPEM(b)
		}
	}
	return pool
}

// loopback reports whether host is on this machine: the engine talks
// plain HTTP to such a registry when it has no TLS, and so does Registry.
func loopback(host string) bool {
	h, _, err := net.SplitHostPort(host)
	if err != nil {
		h = host
	}
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// errRegistry is a registry's answer other than the one wanted.
type errRegistry struct {
	status int
	body   string
}

func (e *errRegistry) Error() string {
	return fmt.Sprintf("registry answered %d: %s", e.status, e.body)
}

// do sends a request to path (under /v2/) and returns the response when
// its status is one of ok; the caller closes its body.
func (r *Registry) do(ctx context.Context, method, path string, header http.Header, ok ...int) (*http.Response, error) {
	r.mu.Lock()
	scheme := r.scheme
	r.mu.Unlock()
	known := scheme != ""
	if !known {
		scheme = "https"
	}
	resp, err := r.send(ctx, scheme, method, path, header)
	if err != nil && !known && loopback(r.host) {
		// A loopback registry without TLS, as the engine allows.
		if resp, err = r.send(ctx, "http", method, path, header); err == nil {
			scheme = "http"
		}
	}
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.scheme = scheme
	r.mu.Unlock()
	if !slices.Contains(ok, resp.StatusCode) {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		if resp.StatusCode == http.StatusUnauthorized && strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			return nil, fmt.Errorf("%s %s: the registry wants bearer tokens; deleting old builds needs a registry with basic (htpasswd) authentication", method, path)
		}
		return nil, fmt.Errorf("%s %s: %w", method, path, &errRegistry{resp.StatusCode, strings.TrimSpace(string(b))})
	}
	return resp, nil
}

func (r *Registry) send(ctx context.Context, scheme, method, path string, header http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, scheme+"://"+r.host+"/v2/"+path, nil)
	if err != nil {
		return nil, err
	}
	if header != nil {
		req.Header = header.Clone()
	}
	if r.creds != nil {
		u, p, err := r.creds()
		if err != nil {
			return nil, err
		}
		req.SetBasicAuth(u, p)
	}
	// The URL is safe to show (no credentials in it); a transport's
	// error never quotes the Authorization header.
	return r.http.Do(req)
}

// Tags lists the tags of repo; none when the registry has no such
// repository.
func (r *Registry) Tags(ctx context.Context, repo string) ([]string, error) {
	resp, err := r.do(ctx, http.MethodGet, repo+"/tags/list", nil, http.StatusOK, http.StatusNotFound)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, nil
	}
	var list struct{ Tags []string }
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return nil, fmt.Errorf("tags of %s: %w", repo, err)
	}
	return list.Tags, nil
}

// manifestTypes are the manifests a registry may hold for a push: the
// engine's (Docker schema 2) or OCI, single or multi-platform.
var manifestTypes = []string{
	"application/vnd.docker.distribution.manifest.v2+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
	"application/vnd.oci.image.manifest.v1+json",
	"application/vnd.oci.image.index.v1+json",
}

func acceptManifests() http.Header {
	return http.Header{"Accept": {strings.Join(manifestTypes, ", ")}}
}

// Digest returns the digest of the manifest that ref (a tag or a digest)
// names in repo.
func (r *Registry) Digest(ctx context.Context, repo, ref string) (string, error) {
	resp, err := r.do(ctx, http.MethodHead, repo+"/manifests/"+ref, acceptManifests(), http.StatusOK)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	d := resp.Header.Get("Docker-Content-Digest")
	if d == "" {
		return "", fmt.Errorf("manifest %s:%s: the registry gave no digest", repo, ref)
	}
	return d, nil
}

// Blobs returns the blobs (layers and config, with their sizes) of the
// manifest digest in repo, those of the manifests an index lists included.
func (r *Registry) Blobs(ctx context.Context, repo, digest string) (map[string]int64, error) {
	out := map[string]int64{}
	if err := r.blobs(ctx, repo, digest, out, 0); err != nil {
		return nil, err
	}
	return out, nil
}

func (r *Registry) blobs(ctx context.Context, repo, digest string, out map[string]int64, depth int) error {
	resp, err := r.do(ctx, http.MethodGet, repo+"/manifests/"+digest, acceptManifests(), http.StatusOK)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	type desc struct {
		Digest string
		Size   int64
	}
	var m struct {
		Config    desc
		Layers    []desc
		Manifests []desc
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&m); err != nil {
		return fmt.Errorf("manifest %s@%s: %w", repo, digest, err)
	}
	for _, d := range append(m.Layers, m.Config) {
		if d.Digest != "" {
			out[d.Digest] = d.Size
		}
	}
	if depth > 0 {
		return nil
	}
	for _, c := range m.Manifests {
		if err := r.blobs(ctx, repo, c.Digest, out, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// Delete deletes the manifest digest from repo (every tag on it goes); a
// manifest already gone is success.
func (r *Registry) Delete(ctx context.Context, repo, digest string) error {
	resp, err := r.do(ctx, http.MethodDelete, repo+"/manifests/"+digest, nil, http.StatusAccepted, http.StatusOK, http.StatusNotFound)
	if err != nil {
		var e *errRegistry
		if errors.As(err, &e) && e.status == http.StatusMethodNotAllowed {
			return fmt.Errorf("%w (the registry does not allow deletes: set storage.delete.enabled, or REGISTRY_STORAGE_DELETE_ENABLED=true)", err)
		}
		return err
	}
	resp.Body.Close()
	return nil
}

// RegistryPrune is what PruneRegistry deleted from the registry.
type RegistryPrune struct {
	Image string `json:"image"`
	// Deleted are the tags (short build keys) deleted.
	Deleted []string `json:"deleted"`
	// Reclaimable is the size of the layers and configs that only the
	// deleted builds used: what the registry's next garbage-collect frees.
	Reclaimable int64 `json:"reclaimable_bytes"`
}

// PruneRegistry deletes from the registry the pushes of image whose builds
// the site no longer keeps (Prune removed them here: the registry keeps
// the same history), except what a service runs (inUse holds the
// registry/repo@digest references of the site's services). With no build
// of image kept here at all (an engine whose images were wiped), it
// deletes nothing: that is no history to go by.
func (b *Builder) PruneRegistry(ctx context.Context, r *Registry, image string, inUse map[string]bool) (RegistryPrune, error) {
	out := RegistryPrune{Image: image, Deleted: []string{}}
	if b.opts.Registry == "" || r == nil {
		return out, nil
	}
	unlock, err := b.lock(ctx, image)
	if err != nil {
		return out, err
	}
	defer unlock()
	builds, err := b.Builds(ctx, image)
	if err != nil || len(builds) == 0 {
		return out, err
	}
	repo := b.repo(image)
	keep := map[string]bool{} // tags of the builds kept here
	for _, bd := range builds {
		if len(bd.Key) >= ShortKeyLen {
			keep[bd.Key[:ShortKeyLen]] = true
		}
	}
	keepDigest := map[string]bool{}
	for ref := range inUse {
		if d, ok := strings.CutPrefix(ref, b.opts.Registry+"/"+repo+"@"); ok {
			keepDigest[d] = true
		}
	}
	tags, err := r.Tags(ctx, repo)
	if err != nil {
		return out, fmt.Errorf("registry prune of %s: %w", image, err)
	}
	digest := map[string]string{} // tag → digest
	for _, t := range tags {
		d, err := r.Digest(ctx, repo, t)
		if err != nil {
			return out, fmt.Errorf("registry prune of %s: %w", image, err)
		}
		digest[t] = d
		if keep[t] {
			keepDigest[d] = true
		}
	}
	kept, gone := map[string]int64{}, map[string]int64{}
	var doomed []string // digests to delete
	for _, t := range tags {
		d := digest[t]
		blobs, err := r.Blobs(ctx, repo, d)
		if err != nil {
			return out, fmt.Errorf("registry prune of %s: %w", image, err)
		}
		dst := gone
		if keepDigest[d] {
			dst = kept
		} else if !slices.Contains(doomed, d) {
			doomed = append(doomed, d)
		}
		for k, v := range blobs {
			dst[k] = v
		}
	}
	var errs []error
	for _, d := range doomed {
		if err := r.Delete(ctx, repo, d); err != nil {
			errs = append(errs, fmt.Errorf("registry prune of %s: %w", image, err))
			continue
		}
		for _, t := range tags {
			if digest[t] == d {
				out.Deleted = append(out.Deleted, t)
			}
		}
	}
	if len(errs) == 0 {
		for k, v := range gone {
			if _, shared := kept[k]; !shared {
				out.Reclaimable += v
			}
		}
	}
	slices.Sort(out.Deleted)
	if len(out.Deleted) > 0 {
		b.log.InfoContext(ctx, "old builds deleted from the registry", "image", image, "tags", out.Deleted,
			"reclaimable_bytes", out.Reclaimable)
	}
	return out, errors.Join(errs...)
}
