package limits

import (
	"errors"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/errdefs"
)

func ptr[T any](v T) *T { return &v }

// The table, api.Limits, api/openapi.yaml and docs/api.md name the same
// limits: a limit added to one and not the others fails here.
func TestTableMatchesTheAPIAndItsDocs(t *testing.T) {
	var table []string
	for _, f := range All() {
		table = append(table, f.API)
	}
	slices.Sort(table)
	var structFields []string
	rt := reflect.TypeOf(api.Limits{})
	for i := 0; i < rt.NumField(); i++ {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		structFields = append(structFields, name)
	}
	slices.Sort(structFields)
	if !slices.Equal(table, structFields) {
		t.Errorf("api.Limits has %v, the table %v", structFields, table)
	}
	yaml, err := os.ReadFile("../api/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if want, err := RewriteOpenAPI(string(yaml)); err != nil || want != string(yaml) {
		t.Errorf("api/openapi.yaml's Limits is not the table's (run go generate ./limits): %v", err)
	}
	doc := section(t, "../docs/api.md", "Limits (each a positive number", regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\|"), "\nResponse `200`")
	if !slices.Equal(table, doc) {
		t.Errorf("docs/api.md's Limits table has %v, the table %v", doc, table)
	}
}

// section returns the sorted names re finds in path between start and end.
func section(t *testing.T, path, start string, re *regexp.Regexp, end string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(data), start)
	if !ok {
		t.Fatalf("%s: no %q", path, start)
	}
	body, _, _ := strings.Cut(rest, end)
	var out []string
	for _, m := range re.FindAllStringSubmatch(body, -1) {
		out = append(out, m[1])
	}
	slices.Sort(out)
	return out
}

func TestDefaultsAreTheOriginalDesigns(t *testing.T) {
	d := Defaults()
	want := Set{WallTime: 10 * time.Second, CPUTime: 10 * time.Second, MemoryBytes: 128 << 20, Pids: 64, CPUs: 0.5,
		OutputBytes: 1 << 20, TmpBytes: 64 << 20, WorkBytes: 64 << 20, FileSizeBytes: 16 << 20, OpenFiles: 256}
	if d != want {
		t.Fatalf("defaults %+v, want %+v", d, want)
	}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := d.Within(Maximums()); err != nil {
		t.Fatal(err)
	}
}

func TestResolve(t *testing.T) {
	max := Maximums()
	cases := []struct {
		name string
		ask  *api.Limits
		want func(s *Set) // changes from the defaults
		err  string       // substring of the refusal
	}{
		{"nothing asked", nil, func(*Set) {}, ""},
		{"memory", &api.Limits{MemoryBytes: ptr(int64(64 << 20))}, func(s *Set) { s.MemoryBytes = 64 << 20 }, ""},
		{"open files", &api.Limits{OpenFiles: ptr(int64(64))}, func(s *Set) { s.OpenFiles = 64 }, ""},
		{"cpu follows wall", &api.Limits{WallTimeMS: ptr(int64(2000))}, func(s *Set) { s.WallTime, s.CPUTime = 2*time.Second, 2*time.Second }, ""},
		{"cpu follows wall up to its maximum", &api.Limits{WallTimeMS: ptr(int64(60000))}, func(s *Set) { s.WallTime, s.CPUTime = time.Minute, time.Minute }, ""},
		{"cpu set apart", &api.Limits{WallTimeMS: ptr(int64(2000)), CPUTimeMS: ptr(int64(500))}, func(s *Set) { s.WallTime, s.CPUTime = 2*time.Second, 500*time.Millisecond }, ""},
		{"cores", &api.Limits{CPUs: ptr(1.5)}, func(s *Set) { s.CPUs = 1.5 }, ""},
		{"zero", &api.Limits{Pids: ptr(int64(0))}, nil, "limits.pids must be greater than zero"},
		{"negative", &api.Limits{OpenFiles: ptr(int64(-1))}, nil, "limits.open_files must be greater than zero"},
		{"NaN-free zero cores", &api.Limits{CPUs: ptr(0.0)}, nil, "limits.cpus must be greater than zero"},
		{"over a day", &api.Limits{WallTimeMS: ptr(int64(24*3600*1000 + 1))}, nil, "limits.wall_time_ms is above the configured maximum"},
		{"above the maximum", &api.Limits{OpenFiles: ptr(int64(5000))}, nil, "limits: nofile 5000 is above the maximum 4096"},
		{"below the minimum", &api.Limits{OpenFiles: ptr(int64(8))}, nil, "nofile 8 is below the minimum of 16"},
		{"tiny memory", &api.Limits{MemoryBytes: ptr(int64(1024))}, nil, "below the 4 MiB minimum"},
		{"huge memory", &api.Limits{MemoryBytes: ptr(int64(1 << 62))}, nil, "above the maximum"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := FromAPI(c.ask, "limits")
			var got Set
			if err == nil {
				got, err = Resolve(p, Defaults(), max, "limits")
			}
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) || !errors.Is(err, errdefs.ErrInvalid) {
					t.Fatalf("got %v, want an invalid error with %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := Defaults()
			c.want(&want)
			if got != want {
				t.Fatalf("got %+v, want %+v", got, want)
			}
		})
	}
}

func TestFromConfig(t *testing.T) {
	cases := []struct {
		name string
		in   map[string]any
		want func(s *Set)
		err  string
	}{
		{"sizes and durations as text", map[string]any{"memory": "256MiB", "wall_time": "1500ms", "nofile": int64(512), "cpus": int64(2)},
			func(s *Set) { s.MemoryBytes, s.WallTime, s.OpenFiles, s.CPUs = 256<<20, 1500*time.Millisecond, 512, 2 }, ""},
		{"fractional cores", map[string]any{"cpus": 0.25}, func(s *Set) { s.CPUs = 0.25 }, ""},
		{"unknown key", map[string]any{"memroy": "1MiB"}, nil, `unknown limit "memroy"`},
		{"a number for a size", map[string]any{"memory": int64(5)}, nil, "memory: expected a size"},
		{"text for a count", map[string]any{"pids": "5"}, nil, "pids: expected a whole number"},
		{"a bad duration", map[string]any{"cpu_time": "5 parsecs"}, nil, "cpu_time: duration"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := FromConfig(c.in, "defaults")
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("got %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := Defaults()
			c.want(&want)
			if got := p.Over(Defaults()); got != want {
				t.Fatalf("got %+v, want %+v", got, want)
			}
		})
	}
}

// Flags go through the config's parser, so `--memory 64MiB` and
// `memory = "64MiB"` mean the same.
func TestFromFlags(t *testing.T) {
	flags := map[string]string{"memory": "64MiB", "nofile": "100", "wall-time": "2s"}
	p, err := FromFlags(func(f string) (string, bool) { v, ok := flags[f]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	got := p.Settle(Defaults())
	if got.MemoryBytes != 64<<20 || got.OpenFiles != 100 || got.WallTime != 2*time.Second || got.CPUTime != 2*time.Second {
		t.Fatalf("got %+v", got)
	}
	a := p.API()
	if a == nil || *a.MemoryBytes != 64<<20 || *a.OpenFiles != 100 || *a.WallTimeMS != 2000 || a.Pids != nil {
		t.Fatalf("as the API: %+v", a)
	}
	for flag, bad := range map[string]string{"cpus": "0", "memory": "-1", "nofile": "x"} {
		_, err := FromFlags(func(f string) (string, bool) { return bad, f == flag })
		if err == nil || !strings.Contains(err.Error(), "--"+flag) {
			t.Errorf("--%s %s: %v, want an error naming the flag", flag, bad, err)
		}
	}
}

func TestCaps(t *testing.T) {
	caps := CapsFromAPI(&api.Limits{MemoryBytes: ptr(int64(32 << 20)), WallTimeMS: ptr(int64(1 << 60))})
	if name := CapsFromAPI(&api.Limits{MemoryBytes: ptr(int64(64 << 20))}).AboveCap(caps); name != "memory_bytes" {
		t.Errorf("64 MiB under a 32 MiB cap: %q", name)
	}
	if name := CapsFromAPI(&api.Limits{MemoryBytes: ptr(int64(16 << 20)), Pids: ptr(int64(1000))}).AboveCap(caps); name != "" {
		t.Errorf("16 MiB under a 32 MiB cap, pids uncapped: %q", name)
	}
	got := Defaults().Capped(caps.Over(Maximums()))
	if got.MemoryBytes != 32<<20 || got.WallTime != Defaults().WallTime {
		t.Errorf("defaults under the caps: %+v", got)
	}
}

func TestAuditNamesAndUnits(t *testing.T) {
	a := Defaults().Audit()
	if a["wall_time_ms"] != int64(10000) || a["memory_bytes"] != int64(128<<20) || a["cpus"] != 0.5 || a["open_files"] != int64(256) {
		t.Fatalf("audit %v", a)
	}
	if len(a) != len(All()) {
		t.Fatalf("audit has %d limits, the table %d", len(a), len(All()))
	}
}
