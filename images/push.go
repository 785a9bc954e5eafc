package images

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/nbhosting/nbh-sync/internal/shortid"
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

// registryRef is the reference a build of image with this key is pushed
// as: the registry, the site's repository, and the short key as tag.
func (b *Builder) registryRef(image, key string) string {
	return b.opts.Registry + "/" + b.repo(image) + ":" + key[:ShortKeyLen]
}

// StagePush: pushing a passed build to the site's registry failed (the
// registry, not the inputs, is at fault).
const StagePush Stage = "push"

// pushed reports whether a build is in the registry already: the engine
// records a repository digest for every push.
func (b *Builder) pushed(image string, digests []string) bool {
	return slices.ContainsFunc(digests, func(d string) bool { return strings.HasPrefix(d, b.opts.Registry+"/"+b.repo(image)+"@") })
}

// push tags image id as registryRef and pushes it to the Builder's
// registry, returning the digest the registry stored it under. A no-op
// without a registry.
func (b *Builder) push(ctx context.Context, image, key, id string, out io.Writer) (string, error) {
	if b.opts.Registry == "" {
		return "", nil
	}
	p, ok := b.engine.(Pusher)
	if !ok {
		return "", fmt.Errorf("push to %s: the engine cannot push images", b.opts.Registry)
	}
	auth := RegistryAuth("", "")
	if b.opts.RegistryAuth != nil {
		a, err := b.opts.RegistryAuth()
		if err != nil {
			return "", fmt.Errorf("push to %s: %w", b.opts.Registry, err)
		}
		auth = a
	}
	ref := b.registryRef(image, key)
	if err := b.engine.ImageTag(ctx, id, ref); err != nil {
		return "", fmt.Errorf("push %s: %w", ref, err)
	}
	digest, err := b.pushTagged(ctx, p, image, key, ref, auth, out)
	if err != nil {
		// The registry tag says "pushed" to the next look (pushed() reads
		// repository digests, but a tag is what a person sees): a failed
		// push leaves none behind. Even when ctx ended: it is cleanup.
		if rerr := b.engine.ImageRemove(context.WithoutCancel(ctx), ref); rerr != nil && !errors.Is(rerr, ErrNotFound) {
			b.log.WarnContext(ctx, "registry tag of a failed push left behind", "ref", ref, "err", rerr)
		}
		return "", err
	}
	return digest, nil
}

// pushTagged pushes ref, tagged already, and reads the engine's stream to
// the digest the registry stored it under.
func (b *Builder) pushTagged(ctx context.Context, p Pusher, image, key, ref, auth string, out io.Writer) (string, error) {
	fmt.Fprintf(out, "pushing %s\n", ref)
	rc, err := p.ImagePush(ctx, ref, auth)
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
	b.log.InfoContext(ctx, "pushed", "image", image, "key", shortid.Of(key), "ref", ref, "digest", digest)
	return digest, nil
}

// ensurePushed pushes a passed build that is not in the registry yet (the
// process stopped between smoke test and push, or the site just moved to a
// registry).
func (b *Builder) ensurePushed(ctx context.Context, spec *Spec, bd Build) error {
	if b.opts.Registry == "" || b.pushed(spec.Image, bd.Digests) {
		return nil
	}
	// bd's own key: a pinned earlier build is tagged by it.
	_, err := b.push(ctx, spec.Image, cmp.Or(bd.Key, spec.Key), bd.ImageID, io.Discard)
	return err
}
