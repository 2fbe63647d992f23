package languages_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/client"
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

// Compile once, run many: 50 tests against one C program cost one compile
// and 50 runs; an identical request is served from the compile cache.
func TestCompileOnceRunManyAndErrors(t *testing.T) {
	d := startWithImages(t, "gcc")
	ctx := context.Background()
	src := []api.File{{Name: "main.c", Content: "#include <stdio.h>\nint main(void){long a,b;if(scanf(\"%ld %ld\",&a,&b)!=2)return 1;printf(\"%ld  \\n\\n\",a+b);return 0;}"}}
	var tests []api.Test
	for i := 0; i < 50; i++ {
		want := fmt.Sprint(i + 2*i)
		if i == 7 {
			want = "wrong"
		}
		tests = append(tests, api.Test{Stdin: fmt.Sprintf("%d %d\n", i, 2*i), ExpectedStdout: want + "\n"})
	}
	tests = append(tests, api.Test{Stdin: "not numbers", ExpectedStdout: ""})
	start := time.Now()
	r, err := d.Client.ExecuteLanguage(ctx, &api.ExecuteRequest{Language: "c", Files: src, Tests: tests})
	if err != nil {
		t.Fatal(err)
	}
	first := time.Since(start)
	if r.Compile == nil || r.Compile.Cached || r.Run != nil || len(r.Tests) != 51 {
		t.Fatalf("compile %+v, run %v, %d tests", r.Compile, r.Run, len(r.Tests))
	}
	if r.Summary["accepted"] != 49 || r.Summary["wrong_answer"] != 1 || r.Summary["runtime_error"] != 1 {
		t.Errorf("summary %v, want 49 accepted, 1 wrong_answer, 1 runtime_error", r.Summary)
	}
	if r.Tests[7].Status != "wrong_answer" || r.Status != "wrong_answer" {
		t.Errorf("test 7 %s, overall %s: want wrong_answer for both", r.Tests[7].Status, r.Status)
	}
	t.Logf("compile + 51 runs: %v (compile %.0f ms)", first, r.Compile.WallTimeMS)

	again, err := d.Client.ExecuteLanguage(ctx, &api.ExecuteRequest{Language: "c", Files: src, Stdin: "2 3"})
	if err != nil {
		t.Fatal(err)
	}
	if again.Compile == nil || !again.Compile.Cached || again.Run == nil || again.Run.Stdout != "5  \n\n" {
		t.Errorf("identical sources: compile %+v run %+v, want a cache hit", again.Compile, again.Run)
	}

	// A compile that never ends hits the compile limits.
	loop, err := d.Client.ExecuteLanguage(ctx, &api.ExecuteRequest{Language: "cpp",
		Files:         []api.File{{Name: "main.cpp", Content: "template<int N> struct F { enum { v = F<N+1>::v + F<N+2>::v }; };\nint main(){ return F<0>::v; }"}},
		CompileLimits: &api.Limits{WallTimeMS: ptr(int64(3000)), MemoryBytes: ptr(int64(256 << 20))}})
	if err != nil {
		t.Fatal(err)
	}
	if loop.Status != "compile_error" || loop.Compile == nil || loop.Run != nil {
		t.Errorf("runaway template: status %s compile %+v", loop.Status, loop.Compile)
	} else if s := loop.Compile.Status; s != "time_limit" && s != "wall_time_limit" && s != "memory_limit" && s != "runtime_error" {
		t.Errorf("runaway template: compile status %s", s)
	}

	bad := []struct {
		name string
		req  api.ExecuteRequest
		code string
	}{
		{"unknown language", api.ExecuteRequest{Language: "intercal", Files: src}, "unknown_language"},
		{"unknown version", api.ExecuteRequest{Language: "c", Version: "99", Files: src}, "unknown_language"},
		{"no files", api.ExecuteRequest{Language: "c"}, "invalid_request"},
		{"empty main name", api.ExecuteRequest{Language: "c", Files: []api.File{{Name: "", Content: "x"}}}, "invalid_request"},
		{"control character in a name", api.ExecuteRequest{Language: "c", Files: []api.File{{Name: "main.c", Content: "x"}, {Name: "a\x1b.h", Content: ""}}}, "invalid_request"},
		{"a file inside a file", api.ExecuteRequest{Language: "c", Files: []api.File{{Name: "main.c", Content: "x"}, {Name: "main.c/b.h", Content: ""}}}, "invalid_request"},
		{"empty segment", api.ExecuteRequest{Language: "c", Files: []api.File{{Name: "main.c", Content: "x"}, {Name: "a//b.h", Content: ""}}}, "invalid_request"},
		{"dotdot", api.ExecuteRequest{Language: "c", Files: []api.File{{Name: "..", Content: "x"}}}, "invalid_request"},
		{"duplicate", api.ExecuteRequest{Language: "c", Files: []api.File{{Name: "main.c", Content: "x"}, {Name: "main.c", Content: "y"}}}, "invalid_request"},
		{"too large", api.ExecuteRequest{Language: "c", Files: []api.File{{Name: "main.c", Content: strings.Repeat("/", 2<<20)}}}, "request_too_large"},
		{"cmd in language mode", api.ExecuteRequest{Language: "c", Files: src, Cmd: []string{"sh"}}, "invalid_request"},
	}
	for _, b := range bad {
		_, err := d.Client.ExecuteLanguage(ctx, &b.req)
		if !client.IsCode(err, b.code) {
			t.Errorf("%s: %v, want %s", b.name, err, b.code)
		}
		// The message says what exists: the languages, or the version there is.
		if b.name == "unknown language" && (err == nil || !strings.Contains(err.Error(), "python")) {
			t.Errorf("%s: the message does not list the languages: %v", b.name, err)
		}
		if b.name == "unknown version" && (err == nil || !strings.Contains(err.Error(), "12.")) {
			t.Errorf("%s: the message does not say which version exists: %v", b.name, err)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// The JVM's heap follows the stage's memory limit ({memory} in the
// catalog): 300 MiB of live arrays fit in a request for 640 MiB, and the
// same program under the default 256 MiB fails with OutOfMemoryError, not
// with a kill at the cgroup limit.
func TestJavaHeapFollowsTheMemoryLimit(t *testing.T) {
	d := startWithImages(t, "java")
	src := []api.File{{Name: "Main.java", Content: `public class Main {
	public static void main(String[] a) {
		byte[][] keep = new byte[30][];
		for (int i = 0; i < keep.length; i++) { keep[i] = new byte[10 << 20]; keep[i][i] = 1; }
		System.out.println("kept " + keep.length * 10 + " MiB");
	}
}`}}
	tests := []struct {
		name       string
		memory     *int64
		status     string
		out, inErr string
	}{
		{"640 MiB", ptr(int64(640 << 20)), "ok", "kept 300 MiB\n", ""},
		{"the default 256 MiB", nil, "runtime_error", "", "java.lang.OutOfMemoryError"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := d.Client.ExecuteLanguage(context.Background(), &api.ExecuteRequest{Language: "java", Files: src,
				Limits: &api.Limits{MemoryBytes: tt.memory, WallTimeMS: ptr(int64(30000)), CPUTimeMS: ptr(int64(30000))}})
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != tt.status || r.Run == nil || r.Run.Stdout != tt.out || !strings.Contains(r.Run.Stderr, tt.inErr) {
				t.Fatalf("status %s, compile %+v, run %+v; want %s, stdout %q, stderr with %q", r.Status, r.Compile.Result, r.Run, tt.status, tt.out, tt.inErr)
			}
		})
	}
}

// open_files reaches the program in language mode too: `ulimit -n` in an
// interpreted language (bash), getrlimit in a compiled one (C).
func TestOpenFilesInLanguageMode(t *testing.T) {
	d := startWithImages(t, "bash", "gcc")
	for _, tt := range []struct {
		ask  *int64
		want string
	}{{nil, "256"}, {ptr(int64(48)), "48"}, {ptr(int64(2048)), "2048"}} {
		r, err := d.Client.ExecuteLanguage(context.Background(), &api.ExecuteRequest{Language: "bash",
			Files: []api.File{{Name: "main.sh", Content: "ulimit -n"}}, Limits: &api.Limits{OpenFiles: tt.ask}})
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != "ok" || r.Run == nil || strings.TrimSpace(r.Run.Stdout) != tt.want {
			t.Errorf("bash, open_files %v: %s %+v, want %s", tt.ask, r.Status, r.Run, tt.want)
		}
	}
	src := "#include <stdio.h>\n#include <sys/resource.h>\nint main(void){struct rlimit r; getrlimit(RLIMIT_NOFILE,&r); printf(\"%lu\\n\",(unsigned long)r.rlim_cur); return 0;}"
	r, err := d.Client.ExecuteLanguage(context.Background(), &api.ExecuteRequest{Language: "c",
		Files: []api.File{{Name: "main.c", Content: src}}, Limits: &api.Limits{OpenFiles: ptr(int64(33))}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != "ok" || r.Run == nil || r.Run.Stdout != "33\n" {
		t.Errorf("c, open_files 33: %s compile %+v run %+v", r.Status, r.Compile, r.Run)
	}
}

// Projects have directories: a Java package and a Python package work in
// language mode, and "collect" reads a run's output file after every test.
func TestDirectoriesInLanguageMode(t *testing.T) {
	d := startWithImages(t, "java", "python")
	ctx := context.Background()
	java, err := d.Client.ExecuteLanguage(ctx, &api.ExecuteRequest{Language: "java", Files: []api.File{
		{Name: "Main.java", Content: "import util.H;\npublic class Main { public static void main(String[] a) { System.out.println(H.hi()); } }"},
		{Name: "util/H.java", Content: "package util;\npublic class H { public static String hi() { return \"hi from util\"; } }"}},
		Limits: &api.Limits{WallTimeMS: ptr(int64(30000)), CPUTimeMS: ptr(int64(30000))}})
	if err != nil {
		t.Fatal(err)
	}
	if java.Status != "ok" || java.Run == nil || java.Run.Stdout != "hi from util\n" {
		t.Errorf("java package: %s compile %+v run %+v", java.Status, java.Compile, java.Run)
	}
	py, err := d.Client.ExecuteLanguage(ctx, &api.ExecuteRequest{Language: "python", Files: []api.File{
		{Name: "main.py", Content: "import sys\nfrom pkg.mod import double\nn = int(sys.stdin.read())\nopen('out/result.txt', 'w').write(str(double(n)))\nprint(double(n))"},
		{Name: "pkg/__init__.py", Content: ""},
		{Name: "pkg/mod.py", Content: "def double(x):\n    return 2 * x\n"},
		{Name: "out/.keep", Content: ""}},
		Tests:   []api.Test{{Stdin: "2", ExpectedStdout: "4"}, {Stdin: "5", ExpectedStdout: "10"}},
		Collect: []string{"out/result.txt"}})
	if err != nil {
		t.Fatal(err)
	}
	if py.Status != "accepted" || len(py.Tests) != 2 {
		t.Fatalf("python package: %s %+v", py.Status, py.Tests)
	}
	for i, want := range []string{"4", "10"} {
		files := py.Tests[i].Run.Files
		if len(files) != 1 || files[0].Name != "out/result.txt" || files[0].Content != want {
			t.Errorf("test %d collected %+v, want out/result.txt = %s", i, files, want)
		}
	}
}

// A session sandbox created by language has the language's image and
// environment: python imports a package written into /work, and a C file
// put later compiles and runs in the same sandbox. Its execs count under
// the language's label.
func TestSessionByLanguage(t *testing.T) {
	d := startWithImages(t, "python", "gcc")
	ctx := context.Background()
	for _, c := range []struct {
		lang  string
		files []api.File
		put   string
		cmd   []string
		want  string
	}{
		{"python", []api.File{{Name: "pkg/__init__.py", Content: ""}, {Name: "pkg/mod.py", Content: "X = 'from pkg'\n"}},
			"", []string{"python3", "-c", "import pkg.mod; print(pkg.mod.X)"}, "from pkg\n"},
		{"c", nil, "#include <stdio.h>\nint main(void){puts(\"from c\");return 0;}\n",
			[]string{"sh", "-c", "gcc -o m main.c && ./m"}, "from c\n"},
	} {
		sb, err := d.Client.CreateSandbox(ctx, &api.CreateSandboxRequest{Language: c.lang, Files: c.files})
		if err != nil {
			t.Fatalf("%s: create: %v", c.lang, err)
		}
		if sb.Language != c.lang || sb.Version == "" || !strings.HasPrefix(sb.Image, "lang/") {
			t.Errorf("%s: created %+v", c.lang, sb)
		}
		if c.put != "" {
			if _, err := d.Client.WriteFile(ctx, sb.ID, "main.c", strings.NewReader(c.put), 0); err != nil {
				t.Fatal(err)
			}
		}
		resp, err := d.Client.Exec(ctx, sb.ID, &api.SandboxExecRequest{Cmd: c.cmd})
		if err != nil {
			t.Fatalf("%s: exec: %v", c.lang, err)
		}
		if resp.Status != api.StatusOK || resp.Run.Stdout != c.want {
			t.Errorf("%s: %s %q %q, want %q", c.lang, resp.Status, resp.Run.Stdout, resp.Run.Stderr, c.want)
		}
		if err := d.Client.DeleteSandbox(ctx, sb.ID); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := testdaemon.HTTPClient(d.Socket).Get("http://sandboxd/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, lang := range []string{"python", "c"} {
		if line := fmt.Sprintf("sandboxd_executions_total{language=%q,status=\"ok\"} 1\n", lang); !strings.Contains(string(body), line) {
			t.Errorf("metrics lack %q", strings.TrimSpace(line))
		}
	}
}
