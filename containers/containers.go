// Package containers manages student containers on the Docker engine: it
// reads which containers nbh-sync manages (one list call per pass), and
// spawns a student's container (use, start or make it).
//
// The engine is reached through the small Engine interface; docker.go is the
// only file that imports the Docker SDK, and no SDK type leaves it.
package containers

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"

	"github.com/nbhosting/nbh-sync/imageref"
	"github.com/nbhosting/nbh-sync/manifest"
)

// Labels set on every container nbh-sync creates.
const (
	LabelCourse    = "org.nbhosting.course"
	LabelStudent   = "org.nbhosting.student"
	LabelManagedBy = "org.nbhosting.managed-by"
	// LabelPort records the published host port, which also names the
	// server's URL prefix (/{port}/).
	LabelPort = "org.nbhosting.port"
	// LabelUID records the uid the server runs as, so that placeholders
	// (a token with {uid}, say) can be expanded again later.
	LabelUID = "org.nbhosting.uid"
	// LabelBasePath records the URL prefix the server was started under
	// (its Jupyter base_url): /{port}/ as nbhosting does, or the stable
	// /u/{course}/{student}/ when the command uses {prefix}. The probe and
	// the front door must use the same prefix the server does.
	LabelBasePath = "org.nbhosting.base-path"
	// LabelSite records the site a container belongs to (the site's name:
	// its data directory), so that sites and other tools sharing an engine
	// leave each other alone. A site acts only on containers carrying its
	// own name here, and on unlabelled nbhosting containers it adopts.
	LabelSite = imageref.LabelSite
	// LabelSettings records a digest of the container: settings the
	// container was made with (SettingsKey), so that an edit of them in
	// courses.yaml makes it stale, as a new image does.
	LabelSettings = "org.nbhosting.settings"
	// ManagedBy is the value of LabelManagedBy.
	ManagedBy = "nbh-sync"
)

// readLabels are the labels a pass reads; List keeps only these.
var readLabels = []string{LabelCourse, LabelStudent, LabelManagedBy, LabelPort, LabelUID, LabelBasePath, LabelSite, LabelSettings}

// State is the coarse state of a container.
type State string

// The states a Container can be in. Paused and restarting containers count
// as running (their server decides whether they are idle); created, exited
// and dead ones as stopped.
const (
	Running State = "running"
	Stopped State = "stopped"
)

// Container is a managed student container, as observed on the engine.
type Container struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Course  string `json:"course"`
	Student string `json:"student"`
	// ImageID is the ID of the image the container was created from.
	ImageID string    `json:"image_id"`
	State   State     `json:"state"`
	Created time.Time `json:"created"`
	// StartedAt is when the container last started (zero if never). From
	// a list it is derived from the engine's status text, rounded down, so
	// it never makes a container look older than it is; from an inspect it
	// is exact.
	StartedAt time.Time `json:"started_at,omitzero"`
	// Port is the published host port of the server (0 if none).
	Port int `json:"port,omitempty"`
	// BasePath is the server's URL prefix, with slashes at both ends: the
	// recorded one, else /{port}/ (nbhosting's convention; "" without a
	// port).
	BasePath string `json:"base_path,omitempty"`
	// UID is the uid recorded at creation ("" for adopted containers).
	UID string `json:"uid,omitempty"`
	// Settings is the SettingsKey of the container: settings it was made
	// with ("" for adopted containers and those made before the label).
	Settings string `json:"settings,omitempty"`
	// Adopted is true for a container made by nbhosting itself: it has the
	// name pattern but not our labels.
	Adopted bool `json:"adopted,omitempty"`
	// Host is the address of the node the server runs on, when the engine
	// places containers on several hosts (Swarm); empty means the
	// Manager's HostIP.
	Host string `json:"host,omitempty"`
	// Task is the engine container that runs the server, when ID names
	// a service (Swarm): its cgroup holds the server's CPU time.
	Task string `json:"task_container,omitempty"`
}

// SettingsKey is a digest of a course's container: settings (12 hex
// digits): what a container made from them records in LabelSettings.
func SettingsKey(cc manifest.Container) string {
	b, err := json.Marshal(cc)
	if err != nil {
		panic(err) // a struct of plain fields always marshals
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:6])
}

// SettingsDiffer reports whether c was made with other container: settings
// than those of key (a SettingsKey); never when either is unknown (c
// adopted or made before the label, or no key).
func (c Container) SettingsDiffer(key string) bool {
	return key != "" && c.Settings != "" && c.Settings != key
}

// CPUID is the engine container whose cgroup holds the server's
// processes: the task's on Swarm, else the container itself.
func (c Container) CPUID() string { return cmp.Or(c.Task, c.ID) }

// Errors callers branch on (with errors.Is).
var (
	// ErrNotFound: no such container (or image).
	ErrNotFound = errors.New("not found")
	// ErrNotManaged: a container has the student's name but is not one
	// nbh-sync manages (someone else's labels); it is never touched.
	ErrNotManaged = errors.New("container not managed by nbh-sync")
	// ErrConflict: the container name is already in use.
	ErrConflict = errors.New("name already in use")
	// ErrPortInUse: the chosen host port was taken before the engine
	// could bind it.
	ErrPortInUse = errors.New("host port already in use")
	// ErrImageNotBuilt: the course's image has no :latest tag yet, or the
	// one it has was not built by nbh-sync (a foreign image of that name
	// is never run).
	ErrImageNotBuilt = errors.New("image not built yet")
	// ErrBadUID: the uid a server would run as is root's or a system
	// account's (below the site's floor, SpawnOptions.MinUID), or no
	// number.
	ErrBadUID = errors.New("uid not allowed for a student")
	// ErrTimeout: the server did not answer in time.
	ErrTimeout = errors.New("server did not answer in time")
)

// Engine is what this package needs from the container engine. Contracts:
// methods that name a container accept an ID or a name; Inspect returns an
// error wrapping ErrNotFound when there is no such container; Create returns
// ErrConflict when the name is taken; Start returns ErrPortInUse when the
// published port is taken; Stop and Remove succeed on a missing container,
// and Remove never removes volumes. An engine that differs from the local
// one reports how through a Capabilities method (see CapabilitiesOf).
type Engine interface {
	// List returns every container, running or not, in one engine call.
	List(ctx context.Context) ([]Raw, error)
	// Images maps each reference (name:tag) that exists to its image, in
	// one engine call; missing references are absent.
	Images(ctx context.Context, refs []string) (map[string]Image, error)
	// Inspect returns one container, with exact StartedAt.
	Inspect(ctx context.Context, name string) (Raw, error)
	Create(ctx context.Context, spec Spec) (id string, err error)
	Start(ctx context.Context, id string) error
	Stop(ctx context.Context, id string, timeout time.Duration) error
	Remove(ctx context.Context, id string) error
}

// Raw is a container as the engine reports it, before classification.
type Raw struct {
	ID      string
	Name    string // without the leading /
	ImageID string
	// EngineState is the engine's state word: created, running, paused,
	// restarting, removing, exited, dead.
	EngineState string
	// Status is the engine's status text ("Up 3 hours"), list only.
	Status  string
	Created time.Time
	// StartedAt is exact from Inspect, zero from List.
	StartedAt time.Time
	// Labels are all the container's from Inspect; from Docker.List, only the
	// ones a pass reads (readLabels).
	Labels map[string]string
	// Ports maps a container port (tcp) to its published host port.
	Ports map[int]int
	// Host is the address of the node the container runs on; empty for
	// the local engine.
	Host string
	// Task is the engine container that runs the server when ID names
	// something else (Swarm: ID is the service, Task its running task's
	// container, empty while none runs); empty on a local engine.
	Task string
}

// Image is an image as the engine reports it: its ID and labels.
type Image struct {
	ID     string
	Labels map[string]string
}

// Spec is what Create needs to make a container.
type Spec struct {
	Name  string
	Image string
	// User runs the command ("0" for root); empty means the image's USER.
	User string
	// Entrypoint replaces the image's; an empty one means none (the engine
	// then runs Cmd as is). nil keeps the image's.
	Entrypoint []string
	Cmd        []string
	Env        []string // KEY=value
	Binds      []string // host:container[:ro]
	Labels     map[string]string
	Port       int // container port, tcp
	HostIP     string
	HostPort   int
	Memory     int64   // bytes, 0 = no limit
	CPUs       float64 // 0 = no limit
	// Constraints are placement constraints (Swarm).
	Constraints []string
}
