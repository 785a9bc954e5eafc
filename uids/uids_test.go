package uids

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/nbhosting/nbh-sync/rootdir"
)

// store is a Store of root over r whose host has the accounts in host.
func store(root string, r Range, host ...int) *Store {
	s := New(root, r, 1000)
	s.hostHas = func(uid int) bool { return slices.Contains(host, uid) }
	return s
}

// 50 new students spawned at once get 50 distinct uids of the range, none
// a host account's, and keep them after a restart. Half of them go through
// one Store and half through another, as the daemon and the command line
// would: only the file lock keeps them apart.
func TestConcurrentAllocationIsStable(t *testing.T) {
	root := t.TempDir()
	r := Range{First: 100000, Last: 199999}
	host := []int{100003, 100010} // host accounts in the range
	a, b := store(root, r, host...), store(root, r, host...)
	const n = 50
	got := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			uid, err := s.UID(fmt.Sprintf("student%02d", i))
			if err != nil {
				t.Error(err)
			}
			got[i] = uid
		})
	}
	wg.Wait()
	seen := map[int]bool{}
	for i, uid := range got {
		switch {
		case uid < r.First || uid > r.Last:
			t.Errorf("student%02d: uid %d outside %v", i, uid, r)
		case slices.Contains(host, uid):
			t.Errorf("student%02d: uid %d is a host account's", i, uid)
		case seen[uid]:
			t.Errorf("student%02d: uid %d given twice", i, uid)
		}
		seen[uid] = true
	}
	// A restart: a new Store reads the same uids back.
	again := store(root, r, host...)
	for i := range n {
		if uid, err := again.UID(fmt.Sprintf("student%02d", i)); err != nil || uid != got[i] {
			t.Errorf("student%02d after a restart: uid %d, %v; want %d", i, uid, err, got[i])
		}
	}
	fi, err := os.Stat(rootdir.UIDs(root))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("record: %v, %v; want mode 0600", fi, err)
	}
	if left, _ := filepath.Glob(filepath.Join(rootdir.State(root), ".*tmp*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestAllocation(t *testing.T) {
	tests := []struct {
		name    string
		r       Range
		host    []int
		record  string         // uids.json before, "" for none
		owners  map[string]int // student folders before, by owner
		student string
		want    int
		wantErr string
	}{
		{name: "first of the range", r: Range{100000, 100009}, student: "ann", want: 100000},
		{name: "a host account's uid is skipped", r: Range{100000, 100009}, host: []int{100000, 100001}, student: "ann", want: 100002},
		{name: "recorded uid kept, even outside a new range", r: Range{200000, 200009},
			record: `{"students": {"ann": 100004}, "migrated": true}`, student: "ann", want: 100004},
		{name: "never reused: after the highest recorded", r: Range{100000, 100009},
			record: `{"students": {"ann": 100000, "bob": 100005}, "migrated": true}`, student: "cid", want: 100006},
		{name: "used up", r: Range{100000, 100001},
			record: `{"students": {"ann": 100000, "bob": 100001}, "migrated": true}`, student: "cid", wantErr: "extend its end"},
		{name: "migration: a folder's owner is its student's uid", r: Range{100000, 100009},
			owners: map[string]int{"ann": 1500, "bob": 100000}, student: "ann", want: 1500},
		{name: "migration: a new student gets no adopted uid", r: Range{100000, 100009},
			owners: map[string]int{"ann": 1500, "bob": 100000}, student: "cid", want: 100001},
		{name: "migration: a root-owned folder is not adopted", r: Range{100000, 100009},
			owners: map[string]int{"ann": 0}, student: "ann", want: 100000},
		{name: "a folder made later (uid given to spawn) is adopted", r: Range{100000, 100009},
			record: `{"students": {"bob": 100000}, "migrated": true}`, owners: map[string]int{"ann": 2000}, student: "ann", want: 2000},
		{name: "a folder owned by another student's uid is not", r: Range{100000, 100009},
			record: `{"students": {"bob": 100000}, "migrated": true}`, owners: map[string]int{"ann": 100000}, student: "ann", want: 100001},
		{name: "unreadable record: no allocation", r: Range{100000, 100009}, record: `{broken`, student: "ann", wantErr: "restore it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			if tt.record != "" {
				if err := os.MkdirAll(rootdir.State(root), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(rootdir.UIDs(root), []byte(tt.record), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			for student, owner := range tt.owners {
				d := rootdir.Student(root, student)
				if err := os.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Chown(d, owner, owner); err != nil {
					t.Skipf("chown needs root: %v", err)
				}
			}
			uid, err := store(root, tt.r, tt.host...).UID(tt.student)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("UID = %d, %v; want an error saying %q", uid, err, tt.wantErr)
				}
				if b, _ := os.ReadFile(rootdir.UIDs(root)); tt.record != "" && string(b) != tt.record {
					t.Errorf("the record changed on error: %s", b)
				}
				return
			}
			if err != nil || uid != tt.want {
				t.Fatalf("UID = %d, %v; want %d", uid, err, tt.want)
			}
		})
	}
}
