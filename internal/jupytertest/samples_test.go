package jupytertest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// The files in testdata/<flavor>/ are verbatim answers of the real servers,
// for fakes to replay. Regenerate them with
//
//	NBH_UPDATE_TESTDATA=1 go test -run TestSampleResponses ./internal/jupytertest
//
// Without that variable, TestSampleResponses checks that the live servers
// still answer in the recorded shape.

// sample names one recorded answer.
type sample struct {
	file   string
	status int
	body   []byte
}

// timestampRE is the servers' timestamp format: ISO 8601 in UTC with a Z,
// microseconds; Python's isoformat leaves the fraction out when it is zero
// (one time in a million), so a parser must accept both.
var timestampRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z$`)

func TestSampleResponses(t *testing.T) {
	t.Parallel()
	for _, flavor := range Flavors {
		t.Run(string(flavor), func(t *testing.T) {
			t.Parallel()
			cli := requireDocker(t)
			s := Start(t, cli, Options{Flavor: flavor})
			ctx := t.Context()
			var samples []sample
			record := func(file string, status int, body []byte) {
				samples = append(samples, sample{file: file, status: status, body: body})
			}
			get := func(file, path string) {
				b, err := s.Raw(ctx, http.MethodGet, path, nil)
				if err != nil {
					t.Fatal(err)
				}
				record(file, http.StatusOK, b)
			}

			get("api_status_fresh.json", "api/status")
			get("api_kernels_empty.json", "api/kernels")
			b, err := s.Raw(ctx, http.MethodPost, "api/kernels", map[string]string{"name": "python3"})
			if err != nil {
				t.Fatal(err)
			}
			record("post_api_kernels.json", http.StatusCreated, b)
			var created Kernel
			if err := json.Unmarshal(b, &created); err != nil {
				t.Fatal(err)
			}
			_ = s.DeleteKernel(ctx, created.ID)

			k := settledKernel(t, s)
			get("api_kernels_idle.json", "api/kernels")
			get("api_status.json", "api/status")
			if err := s.StartExecution(ctx, k.ID, "import time; time.sleep(120)"); err != nil {
				t.Fatal(err)
			}
			listedBusy(t, s, k.ID)
			get("api_kernels_busy.json", "api/kernels")
			if err := s.InterruptKernel(ctx, k.ID); err != nil {
				t.Fatal(err)
			}

			resp, err := http.Get(s.URL + "api/kernels")
			if err != nil {
				t.Fatal(err)
			}
			b, err = readAll(resp)
			if err != nil {
				t.Fatal(err)
			}
			record("api_kernels_no_token.json", resp.StatusCode, b)

			_, err = s.Raw(ctx, http.MethodGet, "api/kernels/00000000-0000-0000-0000-000000000000", nil)
			var he *HTTPError
			if !errors.As(err, &he) {
				t.Fatalf("unknown kernel: %v, want an HTTPError", err)
			}
			record("api_kernels_unknown_id.json", he.StatusCode, []byte(he.Body))

			dir := filepath.Join("testdata", string(flavor))
			for _, smp := range samples {
				path := filepath.Join(dir, smp.file)
				if os.Getenv("NBH_UPDATE_TESTDATA") == "1" {
					if err := os.MkdirAll(dir, 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(path, append(bytes.TrimSpace(smp.body), '\n'), 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (regenerate with NBH_UPDATE_TESTDATA=1)", err)
				}
				if got, want := shape(t, smp.body), shape(t, want); got != want {
					t.Errorf("%s: live answer has shape\n%s\nrecorded shape is\n%s", path, got, want)
				}
				if want := wantStatus[smp.file]; smp.status != want {
					t.Errorf("%s: HTTP %d, want %d", path, smp.status, want)
				}
			}
		})
	}
}

// wantStatus is the HTTP status of each recorded answer.
var wantStatus = map[string]int{
	"api_status_fresh.json":       http.StatusOK,
	"api_status.json":             http.StatusOK,
	"api_kernels_empty.json":      http.StatusOK,
	"api_kernels_idle.json":       http.StatusOK,
	"api_kernels_busy.json":       http.StatusOK,
	"post_api_kernels.json":       http.StatusCreated,
	"api_kernels_no_token.json":   http.StatusForbidden,
	"api_kernels_unknown_id.json": http.StatusNotFound,
}

func readAll(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, err := buf.ReadFrom(resp.Body)
	return buf.Bytes(), err
}

// shape describes a JSON document's structure: object keys, value types,
// timestamps recognised as such; values themselves are left out.
func shape(t *testing.T, doc []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		t.Fatalf("decode %q: %v", doc, err)
	}
	var b strings.Builder
	describe(&b, v)
	return b.String()
}

func describe(b *strings.Builder, v any) {
	switch v := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteString("{")
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(b, "%s: ", k)
			describe(b, v[k])
		}
		b.WriteString("}")
	case []any:
		b.WriteString("[")
		if len(v) > 0 {
			describe(b, v[0])
			fmt.Fprintf(b, " x%d", len(v))
		}
		b.WriteString("]")
	case string:
		if timestampRE.MatchString(v) {
			b.WriteString("timestamp")
		} else {
			b.WriteString("string")
		}
	case nil:
		b.WriteString("null")
	default:
		b.WriteString(reflect.TypeOf(v).String())
	}
}

// TestSamplesDecode needs no engine: every recorded answer decodes into this
// package's types with no field left over, and timestamps carry
// microseconds, so fakes built from the files and probes built on the types
// agree.
func TestSamplesDecode(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no testdata samples")
	}
	for _, file := range files {
		t.Run(filepath.ToSlash(file), func(t *testing.T) {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			base := filepath.Base(file)
			var target any
			switch {
			case strings.HasPrefix(base, "api_status"):
				target = &Status{}
			case base == "post_api_kernels.json":
				target = &Kernel{}
			case base == "api_kernels_no_token.json", base == "api_kernels_unknown_id.json":
				target = &struct {
					Message string  `json:"message"`
					Reason  *string `json:"reason"`
				}{}
			default:
				target = &[]Kernel{}
			}
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			if err := dec.Decode(target); err != nil {
				t.Fatalf("decode into %T: %v", target, err)
			}
			if sh := shape(t, b); strings.Contains(sh, "last_activity: string") || strings.Contains(sh, "started: string") {
				t.Errorf("last_activity is not an ISO 8601 timestamp with microseconds: %s", b)
			}
		})
	}
}
