// Package languages_test runs every language of the shipped catalog end to
// end through a real daemon: hello world, stdin, args, exit codes, an
// uncaught exception, a compile error and a program of several files. The
// images come from `make images` (scripts/build-images.sh); `make test`
// builds them first.
package languages_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

type program map[string]string // file name → content; see files()

// files turns a program into request files, main file first.
func files(main string, p program) []api.File {
	out := []api.File{{Name: main, Content: p[main]}}
	for name, content := range p {
		if name != main {
			out = append(out, api.File{Name: name, Content: content})
		}
	}
	return out
}

type lang struct {
	name, main string
	// args is nil for a language without command-line arguments (sql);
	// compileError is nil for one that compiles nothing.
	hello, echo, args, exit3, crash, compileError, multi program
	// crashStderr must appear in stderr after an uncaught exception.
	crashStderr string
}

var langs = []lang{
	{name: "python", main: "main.py",
		hello: program{"main.py": `print("hello")`}, echo: program{"main.py": "import sys\nsys.stdout.write(sys.stdin.read())"},
		args: program{"main.py": "import sys\nprint(' '.join(sys.argv[1:]))"}, exit3: program{"main.py": "import sys\nsys.exit(3)"},
		crash: program{"main.py": "def f():\n    raise ValueError('boom')\nf()"}, crashStderr: "ValueError: boom",
		multi: program{"main.py": "import helper\nprint(helper.f())", "helper.py": "def f():\n    return 'from helper'"}},
	{name: "javascript", main: "main.js",
		hello: program{"main.js": `console.log("hello")`}, echo: program{"main.js": "process.stdin.pipe(process.stdout)"},
		args: program{"main.js": `console.log(process.argv.slice(2).join(" "))`}, exit3: program{"main.js": "process.exit(3)"},
		crash: program{"main.js": `throw new Error("boom")`}, crashStderr: "Error: boom",
		multi: program{"main.js": `const h = require("./helper.js"); console.log(h.f())`, "helper.js": `module.exports = { f: () => "from helper" }`}},
	{name: "c", main: "main.c",
		hello: program{"main.c": "#include <stdio.h>\nint main(void){puts(\"hello\");return 0;}"},
		echo:  program{"main.c": "#include <stdio.h>\nint main(void){int c;while((c=getchar())!=EOF)putchar(c);return 0;}"},
		args:  program{"main.c": "#include <stdio.h>\nint main(int n,char**v){for(int i=1;i<n;i++)printf(i>1?\" %s\":\"%s\",v[i]);puts(\"\");return 0;}"},
		exit3: program{"main.c": "int main(void){return 3;}"},
		crash: program{"main.c": "#include <assert.h>\nint main(void){assert(1 == 2);return 0;}"}, crashStderr: "Assertion",
		compileError: program{"main.c": "int main(void){ return undeclared; }"},
		multi:        program{"main.c": "#include <stdio.h>\n#include \"util.h\"\nint main(void){printf(\"%s\\n\", helper());return 0;}", "util.h": "static const char *helper(void){return \"from helper\";}"}},
	{name: "cpp", main: "main.cpp",
		hello: program{"main.cpp": "#include <iostream>\nint main(){std::cout<<\"hello\"<<std::endl;}"},
		echo:  program{"main.cpp": "#include <iostream>\nint main(){std::cout<<std::cin.rdbuf();}"},
		args:  program{"main.cpp": "#include <iostream>\nint main(int n,char**v){for(int i=1;i<n;i++)std::cout<<(i>1?\" \":\"\")<<v[i];std::cout<<std::endl;}"},
		exit3: program{"main.cpp": "int main(){return 3;}"},
		crash: program{"main.cpp": "#include <stdexcept>\nint main(){throw std::runtime_error(\"boom\");}"}, crashStderr: "boom",
		compileError: program{"main.cpp": "int main(){ return undeclared; }"},
		multi:        program{"main.cpp": "#include <iostream>\n#include \"util.hpp\"\nint main(){std::cout<<helper()<<std::endl;}", "util.hpp": "#include <string>\ninline std::string helper(){return \"from helper\";}"}},
	{name: "go", main: "main.go",
		hello: program{"main.go": "package main\nimport \"fmt\"\nfunc main(){fmt.Println(\"hello\")}"},
		echo:  program{"main.go": "package main\nimport (\"io\";\"os\")\nfunc main(){io.Copy(os.Stdout, os.Stdin)}"},
		args:  program{"main.go": "package main\nimport (\"fmt\";\"os\";\"strings\")\nfunc main(){fmt.Println(strings.Join(os.Args[1:], \" \"))}"},
		exit3: program{"main.go": "package main\nimport \"os\"\nfunc main(){os.Exit(3)}"},
		crash: program{"main.go": "package main\nfunc main(){panic(\"boom\")}"}, crashStderr: "panic: boom",
		compileError: program{"main.go": "package main\nfunc main(){ undeclared() }"},
		multi:        program{"main.go": "package main\nimport \"fmt\"\nfunc main(){fmt.Println(helper())}", "helper.go": "package main\nfunc helper() string { return \"from helper\" }"}},
	{name: "java", main: "Main.java",
		hello: program{"Main.java": `public class Main { public static void main(String[] a) { System.out.println("hello"); } }`},
		echo:  program{"Main.java": `public class Main { public static void main(String[] a) throws Exception { System.in.transferTo(System.out); System.out.flush(); } }`},
		args:  program{"Main.java": `public class Main { public static void main(String[] a) { System.out.println(String.join(" ", a)); } }`},
		exit3: program{"Main.java": `public class Main { public static void main(String[] a) { System.exit(3); } }`},
		crash: program{"Main.java": `public class Main { public static void main(String[] a) { throw new RuntimeException("boom"); } }`}, crashStderr: "java.lang.RuntimeException: boom",
		compileError: program{"Main.java": `public class Main { void f( }`},
		multi:        program{"Main.java": `public class Main { public static void main(String[] a) { System.out.println(Helper.f()); } }`, "Helper.java": `public class Helper { static String f() { return "from helper"; } }`}},
	{name: "rust", main: "main.rs",
		hello: program{"main.rs": `fn main() { println!("hello"); }`},
		echo:  program{"main.rs": "use std::io::Read;\nfn main(){let mut s=String::new();std::io::stdin().read_to_string(&mut s).unwrap();print!(\"{}\",s);}"},
		args:  program{"main.rs": "fn main(){let a: Vec<String> = std::env::args().skip(1).collect();println!(\"{}\", a.join(\" \"));}"},
		exit3: program{"main.rs": "fn main(){std::process::exit(3);}"},
		crash: program{"main.rs": `fn main() { panic!("boom"); }`}, crashStderr: "boom",
		compileError: program{"main.rs": `fn main() { let x: i32 = "text"; }`},
		multi:        program{"main.rs": "mod helper;\nfn main(){println!(\"{}\", helper::f());}", "helper.rs": "pub fn f() -> &'static str { \"from helper\" }"}},
	{name: "ruby", main: "main.rb",
		hello: program{"main.rb": `puts "hello"`}, echo: program{"main.rb": "print $stdin.read"},
		args: program{"main.rb": `puts ARGV.join(" ")`}, exit3: program{"main.rb": "exit 3"},
		crash: program{"main.rb": `raise ArgumentError, "boom"`}, crashStderr: "boom (ArgumentError)",
		multi: program{"main.rb": "require_relative 'helper'\nputs helper", "helper.rb": "def helper\n  'from helper'\nend"}},
	{name: "php", main: "main.php",
		hello: program{"main.php": `<?php echo "hello\n";`}, echo: program{"main.php": `<?php echo stream_get_contents(STDIN);`},
		args: program{"main.php": `<?php echo implode(" ", array_slice($argv, 1)), "\n";`}, exit3: program{"main.php": "<?php exit(3);"},
		crash: program{"main.php": `<?php throw new Exception("boom");`}, crashStderr: "Exception: boom",
		multi: program{"main.php": "<?php require __DIR__ . '/helper.php'; echo helper(), \"\\n\";", "helper.php": "<?php function helper() { return 'from helper'; }"}},
	{name: "lua", main: "main.lua",
		hello: program{"main.lua": `print("hello")`}, echo: program{"main.lua": `io.write(io.read("a"))`},
		args: program{"main.lua": `print(table.concat(arg, " "))`}, exit3: program{"main.lua": "os.exit(3)"},
		crash: program{"main.lua": `error("boom")`}, crashStderr: "boom",
		multi: program{"main.lua": "package.path = './?.lua;' .. package.path\nlocal h = require('helper')\nprint(h.f())", "helper.lua": "return { f = function() return 'from helper' end }"}},
	{name: "bash", main: "main.sh",
		hello: program{"main.sh": `echo hello`}, echo: program{"main.sh": "cat"},
		args: program{"main.sh": `echo "$*"`}, exit3: program{"main.sh": "exit 3"},
		crash: program{"main.sh": "set -e\necho boom >&2\nfalse\necho unreachable"}, crashStderr: "boom",
		multi: program{"main.sh": "source ./helper.sh\nhelper", "helper.sh": "helper() { echo 'from helper'; }"}},
	{name: "csharp", main: "main.cs",
		hello: program{"main.cs": `class P { static void Main() { System.Console.WriteLine("hello"); } }`},
		echo:  program{"main.cs": `class P { static void Main() { System.Console.Write(System.Console.In.ReadToEnd()); } }`},
		args:  program{"main.cs": `class P { static void Main(string[] a) { System.Console.WriteLine(string.Join(" ", a)); } }`},
		exit3: program{"main.cs": `class P { static int Main() { return 3; } }`},
		crash: program{"main.cs": `class P { static void Main() { throw new System.InvalidOperationException("boom"); } }`}, crashStderr: "System.InvalidOperationException: boom",
		compileError: program{"main.cs": `class P { static void Main() { undeclared(); } }`},
		multi:        program{"main.cs": `class P { static void Main() { System.Console.WriteLine(Helper.F()); } }`, "helper.cs": `static class Helper { public static string F() { return "from helper"; } }`}},
}

// startWithImages starts a daemon with the shipped catalog and the built
// language images in its store: those of the recipes named in only, or
// every one but the big python-sci, which only the test that uses it
// names (testdaemon.LanguageImages).
func startWithImages(t *testing.T, only ...string) *testdaemon.Daemon {
	t.Helper()
	return startWithImagesArgs(t, nil, only...)
}

// startWithImagesArgs is startWithImages with more flags for the daemon.
func startWithImagesArgs(t *testing.T, args []string, only ...string) *testdaemon.Daemon {
	t.Helper()
	catalog, _ := filepath.Abs("../../languages/catalog.toml")
	return testdaemon.StartWith(t, testdaemon.Config{
		Args:   append([]string{"--catalog", catalog, "--concurrency", "2"}, args...),
		Images: testdaemon.LanguageImages(t, only...),
	})
}

func TestLanguages(t *testing.T) {
	d := startWithImages(t)
	ctx := context.Background()
	infos, err := d.Client.Languages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	versions := map[string]string{}
	for _, i := range infos {
		versions[i.Name] = i.Version
		if i.Name == "dotnet" && i.Available {
			t.Log("dotnet is available: this host reaches Microsoft's registry")
		}
	}
	// Two languages at a time: the daemon runs two sandboxes at once
	// (--concurrency 2), and a language's cases run one after another.
	for _, l := range slices.Concat(langs, scriptingLangs, nativeLangs, jvmLangs, beamLangs, mlLangs, nodeLangs) {
		t.Run(l.name, func(t *testing.T) {
			t.Parallel()
			if versions[l.name] == "" {
				t.Fatalf("GET /v1/languages gives %s no version: its image is missing or its version command failed", l.name)
			}
			exec := func(p program, stdin string, args ...string) *api.LanguageResponse {
				t.Helper()
				resp, err := d.Client.ExecuteLanguage(ctx, &api.ExecuteRequest{Language: l.name, Files: files(l.main, p), Stdin: stdin, Args: args})
				if err != nil {
					t.Fatalf("%v\n%s", err, d.Log())
				}
				if resp.Version != versions[l.name] {
					t.Errorf("response version %q, catalog says %q", resp.Version, versions[l.name])
				}
				return resp
			}
			want := func(what string, r *api.LanguageResponse, status, stdout string) {
				t.Helper()
				if r.Status != status || r.Run == nil || r.Run.Stdout != stdout {
					detail := fmt.Sprintf("%+v", r.Run)
					if r.Compile != nil {
						detail += fmt.Sprintf(" compile: %s %q", r.Compile.Status, r.Compile.Stderr)
					}
					t.Errorf("%s: status %s, want %s, stdout %q: %s", what, r.Status, status, stdout, detail)
				}
			}
			want("hello world", exec(l.hello, ""), "ok", "hello\n")
			want("echo of stdin", exec(l.echo, "line one\nline two\n"), "ok", "line one\nline two\n")
			if l.args != nil {
				want("args", exec(l.args, "", "a", "b c", "d"), "ok", "a b c d\n")
			}
			r := exec(l.exit3, "")
			if r.Status != "runtime_error" || r.Run == nil || r.Run.ExitCode != 3 {
				t.Errorf("exit code: %+v", r.Run)
			}
			r = exec(l.crash, "")
			if r.Status != "runtime_error" || r.Run == nil || !strings.Contains(r.Run.Stderr, l.crashStderr) {
				t.Errorf("uncaught exception: status %s, stderr %q, want %q in it", r.Status, stderrOf(r), l.crashStderr)
			}
			want("several files", exec(l.multi, ""), "ok", "from helper\n")
			if l.compileError != nil {
				r = exec(l.compileError, "")
				if r.Status != "compile_error" || r.Run != nil || r.Compile == nil || r.Compile.Stderr == "" && r.Compile.Stdout == "" {
					t.Errorf("compile error: status %s, run %v, compile %+v", r.Status, r.Run, r.Compile)
				}
			}
		})
	}
}

func stderrOf(r *api.LanguageResponse) string {
	if r.Run == nil {
		return ""
	}
	return r.Run.Stderr
}
