package images

import (
	"github.com/nbhosting/nbh-sync/dockerfile"
	"github.com/nbhosting/nbh-sync/manifest"
)

// Lint lints a Dockerfile by the rules of dockerfile.Lint; the problems
// name file and carry its line numbers.
func Lint(file string, src []byte, base dockerfile.Bases) []manifest.Problem {
	var probs []manifest.Problem
	for _, f := range dockerfile.Lint(src, base) {
		probs = append(probs, manifest.Problem{File: file, Line: f.Line, Message: f.Message, Warning: f.Warning})
	}
	return probs
}
