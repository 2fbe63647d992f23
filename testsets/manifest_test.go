package testsets

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/errdefs"
)

const fullManifest = `
compare = "tokens"

[[group]]
name = "g0"

[[group]]
name = "g1"
stop_on_failure = false
depends_on = ["g0"]

[[test]]
name = "b"
group = "g0"
points = 0

[[test]]
name = "a"
group = "g1"
points = 2.5
compare = { mode = "float", abs_tol = 1e-9, case_insensitive = true }

[checker]
language = "cpp"
files = ["checker.cpp", "testlib.h"]

[checker_limits]
wall_time_ms = 5000
memory_bytes = 268435456
`

// testset.toml maps onto the API's types: comparisons as names or
// tables, groups, tests in the listed order with their points, the
// checker's files and limits.
func TestManifestMapsOntoTheAPI(t *testing.T) {
	m, err := parseManifest([]byte(fullManifest))
	if err != nil {
		t.Fatal(err)
	}
	if m.Compare == nil || m.Compare.Mode != api.CompareTokens {
		t.Errorf("compare %+v", m.Compare)
	}
	if len(m.Groups) != 2 || m.Groups[1].StopOnFailure == nil || *m.Groups[1].StopOnFailure || !slices.Equal(m.Groups[1].DependsOn, []string{"g0"}) {
		t.Errorf("groups %+v", m.Groups)
	}
	if len(m.Tests) != 2 || m.Tests[0].Name != "b" || *m.Tests[1].Points != 2.5 || m.Tests[1].Compare.Mode != "float" ||
		*m.Tests[1].Compare.AbsTol != 1e-9 || !m.Tests[1].Compare.CaseInsensitive {
		t.Errorf("tests %+v", m.Tests)
	}
	if m.Checker == nil || m.Checker.Language != "cpp" || !slices.Equal(m.Checker.Files, []string{"checker.cpp", "testlib.h"}) ||
		m.CheckerLimits == nil || *m.CheckerLimits.WallTimeMS != 5000 || *m.CheckerLimits.MemoryBytes != 256<<20 {
		t.Errorf("checker %+v limits %+v", m.Checker, m.CheckerLimits)
	}
}

// A set with that manifest runs as it says; a request's own settings
// win over the set's.
func TestApplyAndOverrides(t *testing.T) {
	s := openStore(t, testLimits)
	arch := tarOf(t, files("a.in", "1", "a.ans", "1", "b.in", "2", "b.ans", "2", "testset.toml", fullManifest,
		"checker.cpp", "int main(){}", "testlib.h", "\xff\xfe"))
	set, err := s.Create(context.Background(), "alice", bytes.NewReader(arch))
	if err != nil {
		t.Fatal(err)
	}
	h, err := s.Use("alice", set.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release()
	req := &api.ExecuteRequest{}
	if _, err := h.Apply(req); err != nil {
		t.Fatal(err)
	}
	if req.Tests[0].Name != "b" || req.Tests[1].Group != "g1" || *req.Tests[1].Points != 2.5 || req.Compare.Mode != "tokens" || len(req.Groups) != 2 {
		t.Errorf("applied: tests %+v compare %+v groups %+v", req.Tests, req.Compare, req.Groups)
	}
	if req.Checker == nil || req.Checker.Files[0].Content != "int main(){}" || req.Checker.Files[1].Encoding != "base64" || *req.CheckerLimits.WallTimeMS != 5000 {
		t.Errorf("checker %+v limits %+v", req.Checker, req.CheckerLimits)
	}
	own := &api.ExecuteRequest{Compare: &api.Compare{Mode: "exact"}, Groups: []api.Group{}, Interactor: &api.Program{Language: "c"}}
	if _, err := h.Apply(own); err != nil {
		t.Fatal(err)
	}
	if own.Compare.Mode != "exact" || len(own.Groups) != 0 || own.Checker != nil || own.CheckerLimits != nil {
		t.Errorf("the request's own settings were replaced: %+v", own)
	}
	if _, err := h.Apply(&api.ExecuteRequest{Tests: []api.Test{{Stdin: "x"}}}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("testset with tests: %v", err)
	}
}

func TestManifestErrors(t *testing.T) {
	cases := []struct{ name, toml, want string }{
		{"unknown key", "comprae = \"tokens\"", `unknown key "comprae"`},
		{"unknown mode", `compare = "fuzzy"`, `mode "fuzzy"`},
		{"unknown compare field", `compare = { mode = "float", tolerance = 1 }`, "tolerance"},
		{"group twice", "[[group]]\nname = \"g\"\n[[group]]\nname = \"g\"", "declared twice"},
		{"depends on a later group", "[[group]]\nname = \"a\"\ndepends_on = [\"b\"]\n[[group]]\nname = \"b\"", "not declared before it"},
		{"bad group name", "[[group]]\nname = \"../x\"", "name"},
		{"undeclared group", "[[test]]\nname = \"1\"\ngroup = \"g\"", `group "g" is not declared`},
		{"negative points", "[[test]]\nname = \"1\"\npoints = -1", "points"},
		{"test twice", "[[test]]\nname = \"1\"\n[[test]]\nname = \"1\"", "listed twice"},
		{"checker and interactor", "[checker]\nlanguage = \"c\"\nfiles = [\"c.c\"]\n[interactor]\nlanguage = \"c\"\nfiles = [\"i.c\"]", "exclude each other"},
		{"checker without files", "[checker]\nlanguage = \"c\"", "needs language and files"},
		{"checker file with a path", "[checker]\nlanguage = \"c\"\nfiles = [\"../c.c\"]", "top level"},
		{"limits without checker", "[checker_limits]\nwall_time_ms = 1", "without [checker]"},
		{"unknown limit", "[checker]\nlanguage = \"c\"\nfiles = [\"c.c\"]\n[checker_limits]\nwall_time = 1", "wall_time"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseManifest([]byte(c.toml))
			if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want invalid with %q", err, c.want)
			}
		})
	}
}

// A listed order must name every test of the archive.
func TestListedOrderNamesEveryTest(t *testing.T) {
	s := openStore(t, testLimits)
	arch := tarOf(t, files("1.in", "1", "1.ans", "1", "2.in", "2", "2.ans", "2", "testset.toml", "[[test]]\nname = \"2\"\n"))
	if _, err := s.Create(context.Background(), "alice", bytes.NewReader(arch)); err == nil || !strings.Contains(err.Error(), "but not 1") {
		t.Errorf("a list without test 1: %v", err)
	}
	arch = tarOf(t, files("1.in", "1", "1.ans", "1", "testset.toml", "[[test]]\nname = \"1\"\n[[test]]\nname = \"3\"\n"))
	if _, err := s.Create(context.Background(), "alice", bytes.NewReader(arch)); err == nil || !strings.Contains(err.Error(), `test "3", which has no 3.in`) {
		t.Errorf("a list with a test not there: %v", err)
	}
}

func TestNaturalOrder(t *testing.T) {
	in := []string{"10", "b2", "1", "a10", "2", "a2", "01", "b10", "test-3", "test-20"}
	slices.SortFunc(in, func(a, b string) int {
		if naturalLess(a, b) {
			return -1
		}
		return 1
	})
	want := []string{"01", "1", "2", "10", "a2", "a10", "b2", "b10", "test-3", "test-20"}
	if !slices.Equal(in, want) {
		t.Errorf("got %v, want %v", in, want)
	}
}
