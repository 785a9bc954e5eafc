package images_test

import (
	"fmt"
	"time"

	"github.com/go-git/go-billy/v5/memfs"
	"github.com/go-git/go-billy/v5/util"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/nbhosting/nbh-sync/images"
	"github.com/nbhosting/nbh-sync/manifest"
)

// The build key of a course's image digests its build inputs as git holds
// them: the course's docker-image/ folder, the start script, the build args.
// A commit that touches only notebooks leaves the key alone, so nothing is
// rebuilt; a change to the Dockerfile makes a new key, hence a build.
func ExampleSpec_Key() {
	cfg, _, err := manifest.Parse("courses.yaml", []byte(`version: 1
courses:
  intro:
    repo: https://git.example.org/teaching/intro.git
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fs := memfs.New()
	repo, _ := git.Init(memory.NewStorage(), fs)
	commit := func(files map[string]string) images.Trees {
		for name, content := range files {
			_ = util.WriteFile(fs, name, []byte(content), 0o644)
		}
		tree, err := commitAll(repo)
		if err != nil {
			panic(err)
		}
		return images.Trees{Course: func(string) (*object.Tree, string, string, error) {
			return tree, "", "https://git.example.org/teaching/intro.git@" + tree.Hash.String()[:7] + ":", nil
		}}
	}
	key := func(trees images.Trees) *images.Spec {
		spec, err := images.NewSpec(cfg, "intro", trees)
		if err != nil {
			panic(err)
		}
		return spec
	}

	first := key(commit(map[string]string{
		"docker-image/nbhosting.Dockerfile": "FROM nbhosting/minimal-notebook\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\n",
		"lesson1.ipynb":                     "{}",
	}))
	notebooks := key(commit(map[string]string{"lesson1.ipynb": `{"cells": []}`, "lesson2.ipynb": "{}"}))
	dockerfile := key(commit(map[string]string{
		"docker-image/nbhosting.Dockerfile": "FROM nbhosting/scipy-notebook\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\n",
	}))

	fmt.Println("context:", first.Files())
	fmt.Println("key:", len(first.Key), "hex digits; tag", first.Image+":", len(first.ShortKey()), "of them")
	fmt.Println("notebooks only, same key:", notebooks.Key == first.Key)
	fmt.Println("new Dockerfile, same key:", dockerfile.Key == first.Key)
	// Output:
	// context: [nbhosting.Dockerfile start-in-dir-as-uid.sh]
	// key: 64 hex digits; tag intro: 12 of them
	// notebooks only, same key: true
	// new Dockerfile, same key: false
}

// commitAll commits the whole work tree and returns the commit's tree.
func commitAll(repo *git.Repository) (*object.Tree, error) {
	wt, err := repo.Worktree()
	if err != nil {
		return nil, err
	}
	if err := wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
		return nil, err
	}
	sig := &object.Signature{Name: "t", Email: "t@example.org", When: time.Unix(0, 0)}
	h, err := wt.Commit("commit", &git.CommitOptions{Author: sig, AllowEmptyCommits: true})
	if err != nil {
		return nil, err
	}
	c, err := repo.CommitObject(h)
	if err != nil {
		return nil, err
	}
	return c.Tree()
}
