package images

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Pusher is an Engine that can push images to a registry (a Swarm site's
// nodes pull from it). DockerEngine is one.
type Pusher interface {
	// ImagePush pushes ref (registry/repository:tag) with the encoded
	// registry credentials auth, and returns the stream of the engine's
	// JSON messages, which the caller reads to the end and closes.
	ImagePush(ctx context.Context, ref, auth string) (io.ReadCloser, error)
}

// RegistryAuth encodes registry credentials for the X-Registry-Auth header.
// The engine wants the header even for a registry without authentication:
// then user and password are empty.
func RegistryAuth(user, password string) string {
	b, _ := json.Marshal(struct {
		Username string `json:"username,omitempty"`
		Password string `json:"password,omitempty"`
	}{user, password})
	return base64.URLEncoding.EncodeToString(b)
}

// RegistryRef is the reference a build of spec is pushed as: the registry,
// the image name, and the build key as tag.
func RegistryRef(registry string, spec *Spec) string {
	return registry + "/" + spec.Image + ":" + spec.ShortKey()
}

// StagePush: pushing a passed build to the site's registry failed (the
// registry, not the inputs, is at fault).
const StagePush Stage = "push"

// pushed reports whether a build is in the registry already: the engine
// records a repository digest for every push.
func pushed(registry string, spec *Spec, digests []string) bool {
	return slices.ContainsFunc(digests, func(d string) bool { return strings.HasPrefix(d, registry+"/"+spec.Image+"@") })
}

// push tags image id as RegistryRef and pushes it to the Builder's
// registry, returning the digest the registry stored it under. A no-op
// without a registry.
func (b *Builder) push(ctx context.Context, spec *Spec, id string, out io.Writer) (string, error) {
	if b.opts.Registry == "" {
		return "", nil
	}
	p, ok := b.engine.(Pusher)
	if !ok {
		return "", fmt.Errorf("push to %s: the engine cannot push images", b.opts.Registry)
	}
	ref := RegistryRef(b.opts.Registry, spec)
	if err := b.engine.ImageTag(ctx, id, ref); err != nil {
		return "", fmt.Errorf("push %s: %w", ref, err)
	}
	fmt.Fprintf(out, "pushing %s\n", ref)
	rc, err := p.ImagePush(ctx, ref, cmp.Or(b.opts.RegistryAuth, RegistryAuth("", "")))
	if err != nil {
		return "", fmt.Errorf("push %s: %w", ref, err)
	}
	defer rc.Close()
	dec := json.NewDecoder(rc)
	var digest string
	for {
		var m jsonMessage
		if err := dec.Decode(&m); err != nil {
			if err == io.EOF {
				break
			}
			return "", fmt.Errorf("push %s: read engine output: %w", ref, err)
		}
		if m.Error != "" || m.ErrorDet != nil {
			msg := m.Error
			if msg == "" {
				msg = m.ErrorDet.Message
			}
			return "", fmt.Errorf("push %s: %s", ref, msg)
		}
		var aux struct{ Digest string }
		if len(m.Aux) > 0 && json.Unmarshal(m.Aux, &aux) == nil && aux.Digest != "" {
			digest = aux.Digest
		}
	}
	if digest == "" {
		return "", fmt.Errorf("push %s: the engine reported no digest", ref)
	}
	fmt.Fprintf(out, "pushed %s@%s\n", ref[:strings.LastIndex(ref, ":")], digest)
	b.log.InfoContext(ctx, "pushed", "image", spec.Image, "key", spec.ShortKey(), "ref", ref, "digest", digest)
	return digest, nil
}

// ensurePushed pushes a passed build that is not in the registry yet (the
// process stopped between smoke test and push, or the site just moved to a
// registry).
func (b *Builder) ensurePushed(ctx context.Context, spec *Spec, bd Build) error {
	if b.opts.Registry == "" || pushed(b.opts.Registry, spec, bd.Digests) {
		return nil
	}
	key := spec
	if k := bd.Key; len(k) >= ShortKeyLen && k != spec.Key {
		// A pinned earlier build: tag it by its own key.
		c := *spec
		c.Key = k
		key = &c
	}
	_, err := b.push(ctx, key, bd.ImageID, io.Discard)
	return err
}
