package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"github.com/nbhosting/nbh-sync/internal/testenv"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
)

func requireDocker(t *testing.T) *client.Client { return testenv.RequireDocker(t) }

func git(t *testing.T, dir string, args ...string) { testenv.Git(t, dir, args...) }

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCLIAgainstASite drives the commands directly (no daemon) over a
// config repo holding one course with its own docker-image/: plan, sync,
// a notebook-only commit that builds nothing, status, why, history.
func TestCLIAgainstASite(t *testing.T) {
	cli := requireDocker(t)
	b := make([]byte, 4)
	rand.Read(b)
	course := "nbhtest-cli-" + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx := context.WithoutCancel(t.Context())
		imgs, _ := cli.ImageList(ctx, image.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", "org.nbhosting.image="+course))})
		for _, im := range imgs {
			cli.ImageRemove(ctx, im.ID, image.RemoveOptions{Force: true, PruneChildren: true})
		}
	})
	cfg, root := t.TempDir(), t.TempDir()
	git(t, cfg, "init", "-q", "-b", "main")
	write(t, filepath.Join(cfg, "courses.yaml"), "version: 1\ncourses:\n  "+course+":\n    repo: .\n    path: course\n")
	write(t, filepath.Join(cfg, "course/docker-image/nbhosting.Dockerfile"),
		"FROM scratch\nCOPY hello /hello\nCOPY start-in-dir-as-uid.sh /usr/local/bin/start-in-dir-as-uid.sh\n")
	write(t, filepath.Join(cfg, "course/docker-image/hello"), "hello\n")
	write(t, filepath.Join(cfg, "course/lesson.ipynb"), "{}\n")
	git(t, cfg, "add", "-A")
	git(t, cfg, "commit", "-qm", "site")

	nbh := func(args ...string) (int, string) {
		t.Helper()
		code, out, errOut := runCLI(t, append([]string{"--api", "none", "--config", cfg, "--root", root, "--log-level", "warn"}, args...)...)
		return code, out + errOut
	}

	code, out := nbh("plan", "--detailed-exitcode")
	if code != exitChanges || !strings.Contains(out, "no build yet") || !strings.Contains(out, "would apply") {
		t.Fatalf("first plan: exit %d\n%s", code, out)
	}
	if code, out = nbh("sync"); code != 0 || !strings.Contains(out, "built ") {
		t.Fatalf("sync: exit %d\n%s", code, out)
	}
	if code, out = nbh("plan", "--detailed-exitcode"); code != 0 || !strings.Contains(out, "no changes") {
		t.Fatalf("plan after sync: exit %d\n%s", code, out)
	}

	// A notebook-only commit: the checkout moves, nothing is built.
	write(t, filepath.Join(cfg, "course/lesson.ipynb"), `{"cells": []}`+"\n")
	git(t, cfg, "commit", "-qam", "notebook")
	if code, out = nbh("plan", "--json"); code != 0 {
		t.Fatalf("plan --json: exit %d\n%s", code, out)
	}
	var plan struct {
		Pulls  []struct{ Course string }
		Builds []struct{ Image, Action string }
	}
	if err := json.Unmarshal([]byte(out), &plan); err != nil {
		t.Fatalf("plan --json: %v\n%s", err, out)
	}
	if len(plan.Pulls) != 1 || len(plan.Builds) != 1 || plan.Builds[0].Action != "none" {
		t.Fatalf("plan after a notebook commit = %+v", plan)
	}
	if code, out = nbh("sync"); code != 0 || strings.Contains(out, "built ") || !strings.Contains(out, "up to date") {
		t.Fatalf("sync after a notebook commit built something: exit %d\n%s", code, out)
	}
	got, err := os.ReadFile(filepath.Join(root, "courses", course, "lesson.ipynb"))
	if err != nil || !strings.Contains(string(got), "cells") {
		t.Fatalf("work tree not updated: %q %v", got, err)
	}

	code, out = nbh("status", "--json")
	var st struct {
		Revision string
		Courses  []struct {
			Name, Commit string
			BuildKey     string `json:"build_key"`
		}
		Images []struct {
			Name     string
			BuildKey string `json:"build_key"`
		}
	}
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil {
		t.Fatalf("status --json: exit %d %v\n%s", code, err, out)
	}
	if len(st.Courses) != 1 || st.Courses[0].Commit == "" || st.Images[0].BuildKey == "" || st.Courses[0].BuildKey != st.Images[0].BuildKey {
		t.Fatalf("status = %+v", st)
	}
	if code, out = nbh("why", course); code != 0 || !strings.Contains(out, "a passed build of key") {
		t.Fatalf("why: exit %d\n%s", code, out)
	}
	if code, out = nbh("history", "--kind", "build"); code != 0 || strings.Count(out, course) != 1 {
		t.Fatalf("history: exit %d, want exactly one build\n%s", code, out)
	}
	// A bad config commit is refused as a whole; the last good one stays.
	write(t, filepath.Join(cfg, "courses.yaml"), "version: 1\ncourses:\n  "+course+":\n    repo: .\n    idle: 2 hours\n")
	git(t, cfg, "commit", "-qam", "typo")
	if code, out = nbh("sync"); code != 1 || !strings.Contains(out, `courses.yaml:5:5: courses.`+course+`.idle: invalid duration "2 hours"`) {
		t.Fatalf("sync of a bad config: exit %d\n%s", code, out)
	}
	if code, out = nbh("status"); code != 0 || !strings.Contains(out, "rejected") {
		t.Fatalf("status after a rejected config:\n%s", out)
	}
}
