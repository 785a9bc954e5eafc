package manifest

import (
	"fmt"

	yaml "go.yaml.in/yaml/v3"
)

// Budgets of YAML alias expansion in courses.yaml: how many nodes, and how
// many bytes of scalar text, aliases may add beyond what is written. A few
// anchors shared by hundreds of courses stay far below them; an alias bomb
// crosses them and is refused before anything walks or decodes the expanded
// tree, which would cost time and memory exponential in the file's size
// (or, with a long string aliased many times, its square).
const (
	MaxAliasNodes = 100_000
	MaxAliasBytes = 1 << 20
)

// cost is the size of a node once its aliases are expanded.
type cost struct{ nodes, bytes int }

func (c cost) add(d cost) cost { return cost{c.nodes + d.nodes, c.bytes + d.bytes} }

func (c cost) over(limit cost) bool { return c.nodes > limit.nodes || c.bytes > limit.bytes }

// checkAliases refuses a document whose aliases expand beyond the budgets,
// or that refer to a node containing them (a cycle). Each node is sized
// once, so the check is linear in the written document whatever the
// expansion.
func checkAliases(file string, doc *yaml.Node) *Problem {
	var written cost
	var count func(n *yaml.Node)
	count = func(n *yaml.Node) {
		written = written.add(cost{1, len(n.Value)})
		if n.Kind == yaml.AliasNode {
			return
		}
		for _, c := range n.Content {
			count(c)
		}
	}
	count(doc)
	limit := written.add(cost{MaxAliasNodes, MaxAliasBytes})

	sizes := map[*yaml.Node]cost{}
	visiting := map[*yaml.Node]bool{}
	var bad *Problem
	var size func(n *yaml.Node) cost
	size = func(n *yaml.Node) cost {
		if s, ok := sizes[n]; ok {
			return s
		}
		visiting[n] = true
		defer delete(visiting, n)
		s := cost{1, len(n.Value)}
		for _, c := range n.Content {
			if bad != nil {
				return s
			}
			if c.Kind != yaml.AliasNode {
				s = s.add(size(c))
			} else if t := c.Alias; t != nil {
				if visiting[t] {
					bad = &Problem{File: file, Line: c.Line, Col: c.Column,
						Message: fmt.Sprintf("alias *%s refers to a node that contains it", c.Value)}
					return s
				}
				s = s.add(size(t))
			}
			if s.over(limit) && bad == nil {
				bad = &Problem{File: file, Line: c.Line, Col: c.Column, Message: fmt.Sprintf(
					"YAML aliases expand to more than %d nodes or %d bytes beyond what is written: refused (an alias bomb?); write the values out, or alias less",
					MaxAliasNodes, MaxAliasBytes)}
			}
			s = cost{min(s.nodes, limit.nodes+1), min(s.bytes, limit.bytes+1)}
		}
		sizes[n] = s
		return s
	}
	size(doc)
	return bad
}
