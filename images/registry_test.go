package images

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// startRegistry serves Debian's docker-registry (Distribution) on a free
// loopback port, deletes allowed, storage in a temp dir, for this test
// alone: a garbage-collect must not run under anyone else's pushes. It
// returns the registry's host:port, its config file and its storage.
func startRegistry(t *testing.T) (addr, config, storage string) {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		if os.Getenv("NBH_REQUIRE_SWARM") == "1" {
			t.Fatal("docker-registry not installed (apt-get install docker-registry)")
		}
		t.Skip("docker-registry not installed")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr = ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	storage, config = filepath.Join(dir, "storage"), filepath.Join(dir, "config.yml")
	yml := fmt.Sprintf("version: 0.1\nlog: {level: warn}\nstorage:\n  filesystem: {rootdirectory: %s}\n  delete: {enabled: true}\nhttp:\n  addr: %s\n", storage, addr)
	if err := os.WriteFile(config, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", config)
	var log bytes.Buffer // shown when the test failed: a push logs "blob unknown" errors as it goes
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("registry log:\n%s", log.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("registry on %s does not answer: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return addr, config, storage
}

// du is the size of the files under dir.
func du(t *testing.T, dir string) int64 {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if fi, err := d.Info(); err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestIntegrationRegistryPrune: the registry keeps the builds the site
// keeps: old builds pushed before are deleted through the registry API,
// except one a service runs; what the prune says it reclaims is what the
// registry's garbage-collect then frees.
func TestIntegrationRegistryPrune(t *testing.T) {
	eng := requireDocker(t)
	if isPodman(t, eng) {
		// A registry serves a Swarm site's nodes, and Swarm is Docker's;
		// podman pushes to a registry without TLS only once its
		// registries.conf says so.
		t.Skip("registry pushes are a Swarm site's: Docker only")
	}
	reg, config, storage := startRegistry(t)
	s, name, yaml, _ := courseSite(t, eng)
	bl := NewBuilder(eng, Options{Keep: 2, Registry: reg})
	const layer = 1 << 20 // incompressible: the registry stores it whole
	var res []Result
	for range 4 {
		data := make([]byte, layer)
		rand.Read(data)
		s.courses[name]["docker-image/data.txt"] = file{data: string(data)}
		res = append(res, mustEnsure(t, bl, s, yaml, name))
	}
	short := func(r Result) string { return r.Key[:ShortKeyLen] }
	r := NewRegistry(reg, nil)
	ctx := t.Context()
	if tags, err := r.Tags(ctx, name); err != nil || len(tags) != 4 {
		t.Fatalf("registry tags after 4 pushes: %v %v", tags, err)
	}
	if removed, err := bl.Prune(ctx, name, nil); err != nil || len(removed) != 2 {
		t.Fatalf("local prune: %v %v", removed, err)
	}

	// Build 0 runs in a service: kept; build 1 goes.
	d0, err := r.Digest(ctx, name, short(res[0]))
	if err != nil {
		t.Fatal(err)
	}
	before := du(t, storage)
	rp, err := bl.PruneRegistry(ctx, r, name, map[string]bool{reg + "/" + name + "@" + d0: true})
	if err != nil || !slices.Equal(rp.Deleted, []string{short(res[1])}) || rp.Reclaimable < layer {
		t.Fatalf("registry prune with build 0 in use: %+v %v", rp, err)
	}
	reclaimable := rp.Reclaimable
	rp, err = bl.PruneRegistry(ctx, r, name, nil)
	if err != nil || !slices.Equal(rp.Deleted, []string{short(res[0])}) || rp.Reclaimable < layer {
		t.Fatalf("registry prune: %+v %v", rp, err)
	}
	reclaimable += rp.Reclaimable
	tags, err := r.Tags(ctx, name)
	slices.Sort(tags)
	want := []string{short(res[2]), short(res[3])}
	slices.Sort(want)
	if err != nil || !slices.Equal(tags, want) {
		t.Errorf("registry tags after the prune: %v %v, want the kept builds %v", tags, err, want)
	}
	if rp2, err := bl.PruneRegistry(ctx, r, name, nil); err != nil || len(rp2.Deleted) != 0 {
		t.Errorf("second prune: %+v %v", rp2, err)
	}

	// The registry frees the space at its garbage-collect.
	out, err := exec.CommandContext(ctx, "docker-registry", "garbage-collect", config).CombinedOutput()
	if err != nil {
		t.Fatalf("garbage-collect: %v\n%s", err, out)
	}
	freed := before - du(t, storage)
	t.Logf("registry prune: 2 builds deleted, %d bytes reported reclaimable, %d freed by garbage-collect (storage %d → %d bytes)",
		reclaimable, freed, before, before-freed)
	// The manifests themselves (a few hundred bytes each) are freed too.
	if freed < reclaimable || freed > reclaimable+64<<10 {
		t.Errorf("garbage-collect freed %d bytes; the prunes said %d", freed, reclaimable)
	}
}
