// Package naming says how a course and a student are named outside
// courses.yaml: the container name nbhosting uses (COURSE-x-STUDENT), the
// URL prefixes a student's server lives under, and which student names are
// acceptable at all.
//
// It imports only the standard library, so that the front door, the API and
// anything else that only needs a name does not pull in an engine's SDK.
package naming

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Sep joins course and student in a container name, as nbhosting does.
const Sep = "-x-"

// Container returns the container name of a student in a course. It is
// unambiguous because a course name neither contains Sep nor ends in "-x"
// (manifest validation) and a student name neither contains Sep nor starts
// with "x-" (CheckStudent): the first Sep of a name is the one Container put
// there.
func Container(course, student string) string { return course + Sep + student }

// MaxStudentLen bounds student names: they become container names and path
// components.
const MaxStudentLen = 63

// maxCourseLen bounds the course part of a name read back from the engine
// or a URL, as manifest validation bounds course names.
const maxCourseLen = 63

// ErrBadStudent: the student name is not acceptable.
var ErrBadStudent = errors.New("invalid student name")

var namePart = regexp.MustCompile(`^[a-z0-9_][a-z0-9_.-]*$`)

// CheckStudent returns an ErrBadStudent error unless s is a usable student
// name: lowercase letters, digits, -, _ and ., not starting with . or -,
// no "..", at most MaxStudentLen characters; and, so that container names
// stay unambiguous (course a + student x-y and course a-x + student y
// would both be a-x-x-y), no "-x-" and no leading "x-".
func CheckStudent(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: empty", ErrBadStudent)
	case len(s) > MaxStudentLen:
		return fmt.Errorf("%w %q: longer than %d characters", ErrBadStudent, s, MaxStudentLen)
	case !namePart.MatchString(s) || strings.Contains(s, ".."):
		return fmt.Errorf("%w %q: want lowercase letters, digits, -, _ and . (no leading . or -, no double dot)", ErrBadStudent, s)
	case strings.Contains(s, Sep) || strings.HasPrefix(s, "x-"):
		return fmt.Errorf("%w %q: must not contain %q nor start with \"x-\": container names are COURSE%sSTUDENT and must name one student of one course", ErrBadStudent, s, Sep, Sep)
	}
	return nil
}

// validCourse is the check a course part read back from outside passes:
// the characters courses.yaml allows, within its length.
func validCourse(c string) bool { return len(c) <= maxCourseLen && namePart.MatchString(c) }

// Split splits an nbhosting container name into course and student. ok is
// false when name does not have the pattern <course>-x-<student> with two
// valid parts.
func Split(name string) (course, student string, ok bool) {
	course, student, ok = strings.Cut(strings.TrimPrefix(name, "/"), Sep)
	if !ok || !validCourse(course) || CheckStudent(student) != nil {
		return "", "", false
	}
	return course, student, true
}

// BasePath is the URL prefix of a student's server, as in nbhosting: the
// host port names it.
func BasePath(port int) string { return "/" + strconv.Itoa(port) + "/" }

// PrefixRoot starts every stable student prefix.
const PrefixRoot = "/u/"

// Prefix is the stable URL prefix of a student's server behind the front
// door, what {prefix} stands for: unlike /{port}/ it survives the container
// being made again on another port.
func Prefix(course, student string) string { return PrefixRoot + course + "/" + student + "/" }

// ValidBasePath accepts a recorded base path: /{port}/ or a stable prefix.
// A recorded one comes from a container label, which anyone with access to
// the engine can set, so it is checked before a probe or the front door
// uses it.
func ValidBasePath(p string) bool {
	if !strings.HasPrefix(p, "/") || !strings.HasSuffix(p, "/") {
		return false
	}
	if rest, ok := strings.CutPrefix(p, PrefixRoot); ok {
		course, student, ok := strings.Cut(strings.TrimSuffix(rest, "/"), "/")
		return ok && validCourse(course) && CheckStudent(student) == nil
	}
	n, err := strconv.Atoi(strings.Trim(p, "/"))
	return err == nil && n > 0 && n < 65536
}
