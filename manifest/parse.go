package manifest

import (
	"cmp"
	"reflect"
	"slices"

	yaml "go.yaml.in/yaml/v3"
	k8syaml "sigs.k8s.io/yaml"
)

// Parse reads a courses.yaml. file names it in messages. It returns the
// config with defaults merged into every course and the warnings; the error,
// when not nil, is an Errors listing every problem found, each with its
// line, column and field path.
func Parse(file string, data []byte) (*Config, []Problem, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, nil, Errors{syntaxProblem(file, data, err)}
	}
	if len(root.Content) == 0 {
		return nil, nil, Errors{{File: file, Line: 1, Message: "the file is empty; it needs at least version: 1 and courses:"}}
	}
	w := &walker{file: file, pos: map[string]position{}, drop: map[*yaml.Node]bool{}, bad: map[string]bool{}}
	doc := root.Content[0]
	if p := checkAliases(file, doc); p != nil {
		return nil, nil, Errors{*p}
	}
	w.pos[""] = position{doc.Line, doc.Column}
	w.walk(doc, reflect.TypeFor[Config](), "")
	w.prune(&root)
	clean, err := yaml.Marshal(&root)
	if err != nil {
		return nil, nil, Errors{{File: file, Message: "re-encode: " + err.Error()}}
	}
	var c Config
	if err := k8syaml.UnmarshalStrict(clean, &c); err != nil {
		// The walk accepts exactly what the strict decoding accepts, so
		// this is a bug in the walk; still, say what the decoder said.
		return nil, nil, append(sorted(w.probs), Problem{File: file, Message: err.Error()})
	}
	v := &validator{walker: w, c: &c}
	v.check()
	var errs, warns []Problem
	for _, p := range v.probs {
		if p.Warning {
			warns = append(warns, p)
		} else {
			errs = append(errs, p)
		}
	}
	if len(errs) > 0 {
		return nil, sorted(warns), sorted(errs)
	}
	c.mergeDefaults()
	c.file, c.pos = file, w.pos
	return &c, sorted(warns), nil
}

func sorted(ps []Problem) Errors {
	slices.SortStableFunc(ps, func(a, b Problem) int {
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return a.Col - b.Col
	})
	return ps
}

// mergeDefaults fills every course field left unset from defaults:, and
// defaults: itself from the built-in values.
func (c *Config) mergeDefaults() {
	c.swarmDefaults()
	d := &c.Defaults
	d.Branch = cmp.Or(d.Branch, DefaultBranch)
	d.Idle = cmp.Or(d.Idle, Duration(DefaultIdle))
	d.Lingering = cmp.Or(d.Lingering, Duration(DefaultLingering))
	d.RetireLimit = cmp.Or(d.RetireLimit, DefaultRetireLimit)
	d.UI = cmp.Or(d.UI, DefaultUI)
	d.Container.Port = cmp.Or(d.Container.Port, DefaultPort)
	d.Container.User = cmp.Or(d.Container.User, DefaultUser)
	if d.Container.Command == nil {
		d.Container.Command = DefaultCommand
	}
	if d.Container.Mounts == nil {
		d.Container.Mounts = DefaultMounts
	}
	d.Workspace = cmp.Or(d.Workspace, WorkspaceCopy)
	d.WorkspaceRetention = cmp.Or(d.WorkspaceRetention, Duration(DefaultWorkspaceRetention))
	c.Build.Concurrency = cmp.Or(c.Build.Concurrency, DefaultConcurrency)
	c.Build.Keep = cmp.Or(c.Build.Keep, DefaultKeep)
	c.Build.Timeout = cmp.Or(c.Build.Timeout, Duration(DefaultBuildTO))
	for name, co := range c.Courses {
		co.Name = name
		co.Branch = cmp.Or(co.Branch, d.Branch)
		co.Idle = cmp.Or(co.Idle, d.Idle)
		co.Lingering = cmp.Or(co.Lingering, d.Lingering)
		co.RetireLimit = cmp.Or(co.RetireLimit, d.RetireLimit)
		co.UI = cmp.Or(co.UI, d.UI)
		if co.Freeze == nil {
			co.Freeze = d.Freeze
		}
		co.Workspace = cmp.Or(co.Workspace, d.Workspace)
		co.WorkspaceRetention = cmp.Or(co.WorkspaceRetention, d.WorkspaceRetention)
		if co.WorkspaceExclude == nil {
			co.WorkspaceExclude = d.WorkspaceExclude
		}
		co.Container = mergeContainer(co.Container, d.Container)
		c.Courses[name] = co
	}
}

func mergeContainer(c, d Container) Container {
	c.Port = cmp.Or(c.Port, d.Port)
	c.Memory = cmp.Or(c.Memory, d.Memory)
	c.CPUs = cmp.Or(c.CPUs, d.CPUs)
	c.Token = cmp.Or(c.Token, d.Token)
	c.User = cmp.Or(c.User, d.User)
	c.Preset = cmp.Or(c.Preset, d.Preset)
	if c.Entrypoint == nil {
		c.Entrypoint = d.Entrypoint
	}
	if c.Command == nil {
		c.Command = d.Command
	}
	if c.Mounts == nil {
		c.Mounts = d.Mounts
	}
	if c.Constraints == nil {
		c.Constraints = d.Constraints
	}
	if len(d.Env) > 0 {
		env := make(map[string]string, len(d.Env)+len(c.Env))
		for k, v := range d.Env {
			env[k] = v
		}
		for k, v := range c.Env {
			env[k] = v
		}
		c.Env = env
	}
	return c
}
