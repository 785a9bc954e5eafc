package manifest

import (
	"encoding/json"
	"reflect"
	"strings"
)

// SchemaFile is where the JSON Schema of courses.yaml is kept in the
// repository, for editors (see docs/configuration.md, "Editor support"). A test fails when it no longer
// matches Schema().
const SchemaFile = "courses.schema.json"

// docs describe fields in the schema, by Go type and JSON name; editors show
// them on hover.
var docs = map[string]string{
	"Config.version":               "Format version of this file; always 1.",
	"Config.defaults":              "Settings every course inherits unless it sets them itself.",
	"Config.schedules":             "Cron schedules (robfig/cron syntax; descriptors such as @every 1m allowed).",
	"Config.build":                 "Image building, site-wide.",
	"Config.images":                "Images defined by the admin; the key is the image name.",
	"Config.courses":               "The courses of the site; the key is the course name (lowercase letters, digits, -, _, .).",
	"Config.engine":                "Where student containers run: the local engine (default) or a Docker Swarm cluster.",
	"Config.students":              "Which uids students' servers run as.",
	"Students.uids":                "Range FIRST-LAST the site allocates a stable uid from to each student with no host account (default 100000-199999); kept in ROOT/state/uids.json.",
	"Students.min-uid":             "Lowest uid a student's server may run as, whatever gave it (default 1000: below are root and the system accounts).",
	"Engine.kind":                  "local (Docker or podman on this host, the default) or swarm (one service per student).",
	"Engine.registry":              "Registry (host[:port]) new builds are pushed to; swarm nodes pull from it.",
	"Engine.adopt":                 "Take unlabelled containers named COURSE-x-STUDENT of the site's courses (nbhosting's) as the site's; true by default, false leaves them alone.",
	"Engine.network":               "Attachable overlay network every student service joins (swarm).",
	"Container.constraints":        "Swarm placement constraints, e.g. node.labels.jupyter==yes.",
	"Config.notify":                "Where notifications go (build failed or recovered, config rejected, remote unreachable).",
	"Defaults.branch":              "Git branch of every course repo.",
	"Defaults.idle":                "A running container idle this long is stopped (removed if its image is stale).",
	"Defaults.lingering":           "A container older than this is stopped even if active.",
	"Defaults.retire-limit":        "At most this many containers of a course stopped or removed per pass.",
	"Defaults.container":           "How a student's container is made.",
	"Defaults.freeze":              "Windows during which no container is stopped or removed for staleness or lingering.",
	"Container.port":               "The Jupyter server's port inside the container.",
	"Container.memory":             "Memory limit, e.g. 2g or 512m.",
	"Container.cpus":               "CPU limit, in CPUs (e.g. 1.5).",
	"Container.command":            "Command of the container; placeholders {root} {course} {student} {uid} {port} {prefix}.",
	"Container.mounts":             "Bind mounts HOST:CONTAINER[:ro]; HOST absolute or under {root}.",
	"Container.env":                "Environment variables; values may use placeholders.",
	"Container.token":              "Jupyter token the server is started with (JUPYTER_TOKEN); the activity probe sends it. Unset: a per-container secret derived from the site key.",
	"Container.user":               "User the command runs as; root (0) by default, so that the start script can switch to the student's uid.",
	"Container.entrypoint":         "Replaces the image's ENTRYPOINT; none by default (docker-stacks' would switch to jovyan first).",
	"Container.preset":             "nbhosting: modules/ on PYTHONPATH, static top-levels, NBAUTOEVAL_LOG and .nbhosting/jupyter/ as under nbhosting.",
	"Defaults.warm-max":            "At most this many warm servers across the site at once (100 by default).",
	"Course.warm":                  "Windows before which the expected students' servers are started (warm), so a class opens fast.",
	"Warm.cron":                    "When the window starts (cron expression); servers are started from then on.",
	"Warm.for":                     "How long the window lasts; unvisited warm servers are not stopped for idleness before its end.",
	"Warm.students":                "Who is expected: recent(30d) (had a server of the course in the last 30 days) or file:PATH (one student a line, in the course).",
	"Warm.max":                     "At most this many warm servers of the course (100 by default).",
	"Freeze.cron":                  "When the window starts (cron expression).",
	"Freeze.for":                   "How long the window lasts, e.g. 4h.",
	"Schedules.pull":               "Fetch the config repo and every course repo.",
	"Schedules.reconcile":          "Run a container pass.",
	"Schedules.rebuild":            "Forced, no-cache rebuild of every image.",
	"Build.concurrency":            "Builds running at once, site-wide.",
	"Build.keep":                   "Builds kept per image (for pin: roll-backs).",
	"Build.timeout":                "Longest a build (smoke test included) may take.",
	"Image.dockerfile":             "Path of the Dockerfile in the config repo.",
	"Image.build-args":             "Docker build arguments.",
	"Image.smoke":                  "Command that must exit 0 in a throwaway container before a new build is published.",
	"Image.pin":                    "Serve this earlier build (its build key, 12 to 64 hex digits) instead of the newest.",
	"Course.repo":                  "Git URL (https, ssh, git, file) without user information (give it in credentials), user@host:path, an absolute path, or . for the config repo.",
	"Course.path":                  "The course root inside its repo.",
	"Course.image":                 "Image of the course; defaults to the course name.",
	"Course.archived":              "No new containers; existing ones are removed once idle.",
	"Course.credentials":           "Where to read the secrets that reach the repo.",
	"Notifier.kind":                "json (generic webhook) or slack (Slack-compatible).",
	"Notifier.url-file":            "File holding the webhook URL.",
	"Notifier.url-env":             "Environment variable holding the webhook URL.",
	"Defaults.workspace":           "How much of the course each student's own copy is given: copy (every file on the first visit, the default), lazy (a file when first opened) or none.",
	"Defaults.workspace-exclude":   "Course paths kept out of workspaces (globs, gitignore-like: solutions/, *.pyc, /draft.md); .git* and .nbhosting/ always are.",
	"Defaults.workspace-retention": "How long the backups taken before a merge or a reset are kept (14d by default; the latest always is).",
	"Course.workspace":             "How much of the course each student's own copy is given: copy, lazy or none (defaults.workspace).",
	"Course.workspace-exclude":     "Course paths kept out of workspaces (defaults.workspace-exclude).",
	"Course.workspace-retention":   "How long workspace backups are kept (defaults.workspace-retention).",
	"Course.suspend":               "On hold: no pulls, builds or container retirements for this course; its students are still served.",
	"Engine.registry-auth-file":    "Absolute path, on the daemon's host, of the registry's credentials: a docker config.json ({auths: {REGISTRY: {auth}}}), mode 0600 (swarm).",
	"Defaults.ui":                  "Notebook interface students land on and deep links open: auto (the image's jupyter lab decides), lab or classic.",
	"Course.ui":                    "Notebook interface students land on and deep links open: auto, lab or classic.",
}

// Schema returns the JSON Schema (draft 2020-12) of courses.yaml, derived
// from the Go types so that the two cannot drift apart.
func Schema() []byte {
	s := schemaOf(reflect.TypeFor[Config]())
	s["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	s["$id"] = "https://github.com/nbhosting/nbh-sync/manifest/courses.schema.json"
	s["title"] = "nbh-sync courses.yaml"
	s["required"] = []string{"version", "courses"}
	props := s["properties"].(map[string]any)
	props["courses"].(map[string]any)["propertyNames"] = map[string]any{"pattern": courseName.String(), "maxLength": MaxNameLen}
	props["images"].(map[string]any)["propertyNames"] = map[string]any{"pattern": imageName.String(), "maxLength": MaxNameLen}
	// An editor can offer the workspace modes.
	course := props["courses"].(map[string]any)["additionalProperties"].(map[string]any)
	for _, obj := range []map[string]any{props["defaults"].(map[string]any), course} {
		obj["properties"].(map[string]any)["workspace"].(map[string]any)["enum"] = WorkspaceModes
	}
	out, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		panic(err) // the schema is made of maps, slices and strings only
	}
	return append(out, '\n')
}

func schemaOf(t reflect.Type) map[string]any {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t {
	case reflect.TypeFor[Duration]():
		return map[string]any{"type": "string", "pattern": `^([0-9]+d|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$`}
	case reflect.TypeFor[UI]():
		enum := make([]string, len(UIs))
		for i, u := range UIs {
			enum[i] = string(u)
		}
		return map[string]any{"type": "string", "enum": enum}
	case reflect.TypeFor[ByteSize]():
		return map[string]any{"type": []string{"string", "integer"}, "pattern": `^[0-9.]+\s*([bkmgtBKMGT]([bB]|[iI][bB]?)?)?$`}
	}
	switch t.Kind() {
	case reflect.Struct:
		props := map[string]any{}
		var required []string
		for i := range t.NumField() {
			f := t.Field(i)
			name := tagName(f)
			if name == "" || !f.IsExported() {
				continue
			}
			p := schemaOf(f.Type)
			if d, ok := docs[t.Name()+"."+name]; ok {
				p["description"] = d
			}
			props[name] = p
			if !strings.Contains(f.Tag.Get("json"), "omitempty") && t != reflect.TypeFor[Config]() {
				required = append(required, name)
			}
		}
		s := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
		if len(required) > 0 {
			s["required"] = required
		}
		return s
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": schemaOf(t.Elem())}
	case reflect.Slice:
		return map[string]any{"type": "array", "items": schemaOf(t.Elem())}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int64:
		return map[string]any{"type": "integer"}
	case reflect.Float64:
		return map[string]any{"type": "number"}
	}
	panic("schema: unsupported type " + t.String())
}
