package languages

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/execution"
	"github.com/sandboxd/sandboxd/limits"
	"github.com/sandboxd/sandboxd/rootfs"
)

// fakeRunner "compiles" by copying sources to an artifact and "runs" by
// echoing stdin, so the plan's logic is tested without sandboxes.
type fakeRunner struct {
	compiles, runs int
	compileStatus  api.Status
	lastArgs       []string
}

func (f *fakeRunner) RunStage(_ context.Context, s execution.Stage) (*execution.Output, error) {
	f.lastArgs = s.Args
	if s.CollectWork {
		f.compiles++
		st := f.compileStatus
		if st == "" {
			st = api.StatusOK
		}
		return &execution.Output{Result: &api.Result{Status: st, Stderr: "compiler says"},
			Work: append(s.Files, rootfs.File{Name: "a.out", Data: []byte("bin"), Mode: 0o755})}, nil
	}
	f.runs++
	return &execution.Output{Result: &api.Result{Status: api.StatusOK, Stdout: string(s.Stdin)}}, nil
}

type mapCache map[string]*CompileOutput

func (m mapCache) Get(k, _ string) (*CompileOutput, bool) { v, ok := m[k]; return v, ok }
func (m mapCache) Put(k string, v *CompileOutput)         { m[k] = v }

var interpreted = &Language{Name: "python", Image: "lang/python", Main: "main.py", Run: []string{"python3", "{main}"}}

var compiled = &Language{Name: "c", Image: "lang/c", Main: "main.c", Compile: []string{"cc", "{files}", "-o", "a.out"}, Run: []string{"./a.out"}}

func TestCompileOnceRunManyTests(t *testing.T) {
	f, cache := &fakeRunner{}, mapCache{}
	req := &Request{Language: compiled, Files: []rootfs.File{{Name: "main.c"}, {Name: "util.h"}},
		Tests: []Test{{Stdin: "1\n", ExpectedStdout: "1"}, {Stdin: "2  \n\n", ExpectedStdout: "2\n"}, {Stdin: "3", ExpectedStdout: "4"}}}
	out, err := Execute(context.Background(), f, cache, req)
	if err != nil {
		t.Fatal(err)
	}
	if f.compiles != 1 || f.runs != 3 {
		t.Fatalf("%d compiles, %d runs; want 1 and 3", f.compiles, f.runs)
	}
	if out.Status != StatusWrongAnswer || out.Summary[StatusAccepted] != 2 || out.Summary[StatusWrongAnswer] != 1 {
		t.Fatalf("status %s summary %v", out.Status, out.Summary)
	}
	if out.Run != nil || out.Compile == nil || out.Compile.Cached {
		t.Fatalf("run %v compile %+v", out.Run, out.Compile)
	}
	// The same sources again: the compile comes from the cache.
	out, err = Execute(context.Background(), f, cache, req)
	if err != nil || f.compiles != 1 || !out.Compile.Cached {
		t.Fatalf("second request: err %v, %d compiles, cached %v", err, f.compiles, out.Compile.Cached)
	}
	// Different sources: a new compile.
	req.Files = []rootfs.File{{Name: "main.c", Data: []byte("x")}, {Name: "util.h"}}
	if _, err := Execute(context.Background(), f, cache, req); err != nil || f.compiles != 2 {
		t.Fatalf("changed sources: err %v, %d compiles", err, f.compiles)
	}
}

func TestCompileErrorStopsThePlan(t *testing.T) {
	f := &fakeRunner{compileStatus: api.StatusRuntimeError}
	out, err := Execute(context.Background(), f, mapCache{}, &Request{Language: compiled, Files: []rootfs.File{{Name: "main.c"}}})
	if err != nil {
		t.Fatal(err)
	}
	if out.Status != StatusCompileError || f.runs != 0 || out.Run != nil || out.Compile.Stderr != "compiler says" {
		t.Fatalf("status %s, %d runs, compile %+v", out.Status, f.runs, out.Compile)
	}
}

func TestInterpretedRunWithArgsAndPrefix(t *testing.T) {
	f := &fakeRunner{}
	py := &Language{Name: "python", Image: "lang/python", Main: "main.py", Run: []string{"python3", "{main}"}, CodePrefix: "# prefix\n"}
	files := []rootfs.File{{Name: "prog.py", Data: []byte("print(1)")}}
	out, err := Execute(context.Background(), f, mapCache{}, &Request{Language: py, Files: files, Args: []string{"a", "b"}, Stdin: []byte("in")})
	if err != nil {
		t.Fatal(err)
	}
	if out.Compile != nil || out.Run.Stdout != "in" || out.Status != "ok" {
		t.Fatalf("%+v", out)
	}
	if strings.Join(f.lastArgs, " ") != "python3 prog.py a b" {
		t.Fatalf("argv %q", f.lastArgs)
	}
	if string(files[0].Data) != "print(1)" {
		t.Fatal("the code prefix changed the caller's file")
	}
}

func TestParseCatalog(t *testing.T) {
	c, err := Parse(`
[[language]]
name = "python"
aliases = ["py", "python3"]
image = "lang/python:3"
main = "main.py"
run = ["python3", "{main}"]
version_cmd = ["python3", "--version"]
version_regexp = "Python ([0-9.]+)"
[language.limits]
memory = "256MiB"
`)
	if err != nil {
		t.Fatal(err)
	}
	l, err := c.Lookup("PY")
	if err != nil || l.Name != "python" || l.Compiled() {
		t.Fatalf("lookup: %v %+v", err, l)
	}
	if v := l.ParseVersion("Python 3.11.2\n"); v != "3.11.2" || !VersionMatches("3", v) || VersionMatches("3.1", v) {
		t.Fatalf("version %q", v)
	}
	if _, err := c.Lookup("cobol"); err == nil || !strings.Contains(err.Error(), "python") {
		t.Fatalf("unknown language error %v does not list what exists", err)
	}
	for _, bad := range []string{
		`[[language]]` + "\nname = \"x\"",
		"[[language]]\nname=\"x\"\nimage=\"i\"\nmain=\"m\"\nrun=[\"r\"]\nbogus=1",
		"[[language]]\nname=\"x\"\nimage=\"i\"\nmain=\"m\"\nrun=[\"r\"]\n[[language]]\nname=\"x\"\nimage=\"i\"\nmain=\"m\"\nrun=[\"r\"]",
	} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestShippedCatalogLoads(t *testing.T) {
	c, err := Load("catalog.toml")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"python", "python-sci", "javascript", "c", "cpp", "go", "java", "rust", "ruby", "php", "lua", "bash", "csharp", "dotnet"} {
		l, err := c.Lookup(name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if len(l.VersionCmd) == 0 || l.versionRE == nil {
			t.Errorf("%s: no version command or regexp: the version must be read from the image", name)
		}
	}
	cpp, _ := c.Lookup("cpp")
	if got := cpp.Sources([]string{"main.cpp", "util.hpp", "b.cc"}); strings.Join(got, " ") != "main.cpp b.cc" {
		t.Errorf("cpp sources %v: headers must not be compiled", got)
	}
}

func TestExpand(t *testing.T) {
	vars := Vars{Main: "Main.java", Files: []string{"Main.java", "Util.java"}, MemoryBytes: 256 << 20}
	tests := []struct {
		name string
		tmpl []string
		want string
	}{
		{"main", []string{"python3", "{main}"}, "python3 Main.java"},
		{"files", []string{"javac", "{files}", "-d", "."}, "javac Main.java Util.java -d ."},
		{"memory inside a flag", []string{"java", "-XX:MaxRAM={memory}", "Main"}, "java -XX:MaxRAM=268435456 Main"},
		{"{files} only as a whole argument", []string{"x{files}"}, "x{files}"},
		{"no placeholders", []string{"./main"}, "./main"},
		{"options before the files", []string{"gcc", "-O2", "-o", "main", "{files}", "-lm"}, "gcc -O2 -o main -O0 -Wall Main.java Util.java -lm"},
		{"options before the main file", []string{"rustc", "-O", "-o", "main", "{main}"}, "rustc -O -o main -O0 -Wall Main.java"},
		{"options without a placeholder: at the end", []string{"build"}, "build -O0 -Wall"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := vars
			if strings.Contains(tt.name, "options") {
				v.Options = []string{"-O0", "-Wall"}
			}
			if got := strings.Join(Expand(tt.tmpl, v), " "); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// The JVM sizes its heap from {memory}: a request for more memory gets a
// bigger heap, in the compile and the run alike.
func TestMemoryReachesTheTemplates(t *testing.T) {
	f := &fakeRunner{}
	java := &Language{Name: "java", Image: "lang/java", Main: "Main.java",
		Compile: []string{"javac", "-J-XX:MaxRAM={memory}", "{files}"}, Run: []string{"java", "-XX:MaxRAM={memory}", "Main"}}
	var compileArgs []string
	rec := runnerFunc(func(ctx context.Context, s execution.Stage) (*execution.Output, error) {
		if s.CollectWork {
			compileArgs = s.Args
		}
		return f.RunStage(ctx, s)
	})
	req := &Request{Language: java, Files: []rootfs.File{{Name: "Main.java"}},
		Limits: limits.Set{MemoryBytes: 512 << 20}, CompileLimits: limits.Set{MemoryBytes: 768 << 20}}
	if _, err := Execute(context.Background(), rec, mapCache{}, req); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(compileArgs, " "); got != "javac -J-XX:MaxRAM=805306368 Main.java" {
		t.Errorf("compile argv %q", got)
	}
	if got := strings.Join(f.lastArgs, " "); got != "java -XX:MaxRAM=536870912 Main" {
		t.Errorf("run argv %q", got)
	}
}

type runnerFunc func(context.Context, execution.Stage) (*execution.Output, error)

func (r runnerFunc) RunStage(ctx context.Context, s execution.Stage) (*execution.Output, error) {
	return r(ctx, s)
}

// The tests' outputs are kept, in order, until OutputBudget is spent; later
// tests keep their verdict but not their output.
func TestOutputBudgetDropsLaterOutputs(t *testing.T) {
	for _, tt := range []struct {
		name    string
		budget  int64
		pool    int64 // shared by the requests in progress; 0: none
		dropped []bool
	}{
		{"no bound", 0, 0, []bool{false, false, false}},
		{"room for all", 30, 0, []bool{false, false, false}},
		{"room for two", 20, 0, []bool{false, false, true}},
		{"a later small one still fits", 15, 0, []bool{false, true, false}},
		{"room for neither long one", 5, 0, []bool{true, true, false}},
		{"the pool is smaller than the request's budget", 30, 12, []bool{false, true, false}},
		{"the pool alone bounds", 0, 20, []bool{false, false, true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pool := NewOutputPool(tt.pool)
			req := &Request{Language: compiled, Files: []rootfs.File{{Name: "main.c"}}, OutputBudget: tt.budget, Pool: pool,
				Tests: []Test{{Stdin: strings.Repeat("a", 10), ExpectedStdout: strings.Repeat("a", 10)},
					{Stdin: strings.Repeat("b", 10), ExpectedStdout: "x"}, {Stdin: "c", ExpectedStdout: "c"}}}
			out, err := Execute(context.Background(), &fakeRunner{}, mapCache{}, req)
			if err != nil {
				t.Fatal(err)
			}
			for i, tr := range out.Tests {
				if tr.OutputDropped != tt.dropped[i] || (tr.OutputDropped && tr.Run.Stdout != "") {
					t.Errorf("test %d: dropped %v (stdout %q), want dropped %v", i, tr.OutputDropped, tr.Run.Stdout, tt.dropped[i])
				}
			}
			if st := []string{out.Tests[0].Status, out.Tests[1].Status, out.Tests[2].Status}; st[0] != StatusAccepted || st[1] != StatusWrongAnswer || st[2] != StatusAccepted {
				t.Errorf("verdicts %v: dropping an output must not change them", st)
			}
			if pool != nil && pool.left != tt.pool {
				t.Errorf("the pool has %d bytes after the request, want all %d back", pool.left, tt.pool)
			}
		})
	}
}

// dirCache records where Get was asked to place the files.
type dirCache struct {
	mapCache
	getDir string
}

func (c *dirCache) Get(k, dir string) (*CompileOutput, bool) {
	c.getDir = dir
	return c.mapCache.Get(k, dir)
}

// The compile's output waits on disk in a directory of the request's under
// ArtifactDir, which is gone when the request ends, however it ends.
func TestArtifactDirIsTheRequestsAndRemoved(t *testing.T) {
	for _, tc := range []struct {
		name          string
		cached        bool
		compileStatus api.Status
		compileErr    error
		runErr        error
		wantErr       string
	}{
		{"compiled and run", false, "", nil, nil, ""},
		{"from the cache", true, "", nil, nil, ""},
		{"a compile error", false, api.StatusRuntimeError, nil, nil, ""},
		{"an output over max_artifact_bytes", false, "", rootfs.ErrTooLarge, nil, "max_artifact_bytes"},
		{"an output too big for the run", false, "", nil, rootfs.ErrWorkFull, "compile's output does not fit in the run's /work"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			cache := &dirCache{mapCache: mapCache{}}
			var collectDir string
			inRuns := true
			r := runnerFunc(func(_ context.Context, s execution.Stage) (*execution.Output, error) {
				if s.CollectWork {
					collectDir = s.CollectWorkDir
					if tc.compileErr != nil {
						return nil, tc.compileErr
					}
					st := tc.compileStatus
					if st == "" {
						st = api.StatusOK
					}
					if err := os.MkdirAll(s.CollectWorkDir, 0o700); err != nil {
						return nil, err
					}
					if err := os.WriteFile(filepath.Join(s.CollectWorkDir, "a.out"), []byte("bin"), 0o700); err != nil {
						return nil, err
					}
					return &execution.Output{Result: &api.Result{Status: st},
						Work: []rootfs.File{{Name: "a.out", Source: filepath.Join(s.CollectWorkDir, "a.out")}}}, nil
				}
				if _, err := os.Stat(s.Files[0].Source); err != nil {
					inRuns = false
				}
				return &execution.Output{Result: &api.Result{Status: api.StatusOK}}, tc.runErr
			})
			req := &Request{Language: compiled, Files: []rootfs.File{{Name: "main.c"}}, ArtifactDir: root,
				Tests: []Test{{Stdin: "1"}, {Stdin: "2"}}}
			if tc.cached {
				b := build{lang: compiled, files: req.Files}
				cache.mapCache[b.key(b.args())] =
					&CompileOutput{Result: &api.Result{Status: api.StatusOK}, Work: []rootfs.File{{Name: "a.out", Source: "/cache/a.out"}}}
			}
			_, err := Execute(context.Background(), r, cache, req)
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) || tc.wantErr == "" && err != nil {
				t.Fatalf("got %v, want %q", err, tc.wantErr)
			}
			if !strings.HasPrefix(cache.getDir, root+"/") || !tc.cached && !strings.HasPrefix(collectDir, root+"/") {
				t.Errorf("cache into %q, compile into %q: not under %s", cache.getDir, collectDir, root)
			}
			if !tc.cached && !inRuns {
				t.Error("the compile's output was gone before the runs")
			}
			if left, _ := os.ReadDir(root); len(left) != 0 {
				t.Errorf("left in ArtifactDir: %v", left)
			}
		})
	}
}

// recordedEvents notes the stages a streaming request is told about and
// checks that every stage got its writers.
type recordedEvents struct {
	stages  []string
	flushed int
}

func (r *recordedEvents) Stage(name string, index int) {
	r.stages = append(r.stages, fmt.Sprintf("%s %d", name, index))
}

func (r *recordedEvents) Output() (io.Writer, io.Writer, func()) {
	return io.Discard, io.Discard, func() { r.flushed++ }
}

func TestEventsFollowTheStages(t *testing.T) {
	interpreted := &Language{Name: "python", Image: "lang/python", Main: "main.py", Run: []string{"python3", "{main}"}}
	tests := []Test{{Stdin: "a", ExpectedStdout: "a"}, {Stdin: "b", ExpectedStdout: "b"}}
	for _, tt := range []struct {
		name   string
		lang   *Language
		tests  []Test
		cached bool
		want   []string
	}{
		{"compiled, no tests", compiled, nil, false, []string{"compile 0", "run 0"}},
		{"compiled, two tests", compiled, tests, false, []string{"compile 0", "test 0", "test 1"}},
		{"compile from the cache", compiled, tests, true, []string{"test 0", "test 1"}},
		{"interpreted", interpreted, nil, false, []string{"run 0"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cache := mapCache{}
			req := &Request{Language: tt.lang, Files: []rootfs.File{{Name: tt.lang.Main}}, Tests: tt.tests}
			if tt.cached {
				if _, err := Execute(context.Background(), &fakeRunner{}, cache, req); err != nil {
					t.Fatal(err)
				}
			}
			ev := &recordedEvents{}
			req.Events = ev
			if _, err := Execute(context.Background(), &fakeRunner{}, cache, req); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ev.stages, tt.want) || ev.flushed != len(tt.want) {
				t.Errorf("stages %v (%d flushed), want %v", ev.stages, ev.flushed, tt.want)
			}
		})
	}
}

func TestCheckCompileOptions(t *testing.T) {
	interpreted := &Language{Name: "python", Run: []string{"python3", "{main}"}}
	many := make([]string, maxCompileOptions+1)
	for i := range many {
		many[i] = "-w"
	}
	for _, tc := range []struct {
		name string
		lang *Language
		opts []string
		err  string
	}{
		{"none", interpreted, nil, ""},
		{"compiled", compiled, []string{"-O0", "-DN=3"}, ""},
		{"interpreted", interpreted, []string{"-O"}, "python is not compiled"},
		{"too many", compiled, many, "at most 64"},
		{"empty", compiled, []string{""}, "each is 1 to"},
		{"NUL", compiled, []string{"-D\x00"}, "without NUL"},
		{"too long", compiled, []string{strings.Repeat("x", maxCompileOptionBytes+1)}, "each is 1 to"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkCompileOptions(tc.lang, tc.opts)
			if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("error %v, want %q", err, tc.err)
			}
		})
	}
}
