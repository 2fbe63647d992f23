// Command langs is `make bench-langs`: hello world in every language of the
// catalog, end to end through the daemon's API (warm pool on; compiled
// languages measured on the run, after one compile), beside the same
// program run bare on the host where the host has that toolchain. It
// prints a table and writes it to docs/benchmarks-languages.md.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/client"
	"github.com/sandboxd/sandboxd/internal/dirtar"
)

type hello struct {
	lang, main, src string
	// bare runs the same program on the host, in dir holding main;
	// empty when the host lacks the toolchain.
	bare []string
	// prepare compiles for the bare run.
	prepare []string
}

var programs = []hello{
	{"python", "main.py", `print("hello")`, []string{"python3", "main.py"}, nil},
	{"javascript", "main.js", `console.log("hello")`, []string{"node", "main.js"}, nil},
	{"c", "main.c", "#include <stdio.h>\nint main(void){puts(\"hello\");return 0;}", []string{"./main"}, []string{"gcc", "-O2", "-o", "main", "main.c"}},
	{"cpp", "main.cpp", "#include <iostream>\nint main(){std::cout<<\"hello\"<<std::endl;}", []string{"./main"}, []string{"g++", "-O2", "-o", "main", "main.cpp"}},
	{"go", "main.go", "package main\nimport \"fmt\"\nfunc main(){fmt.Println(\"hello\")}", []string{"./main"}, []string{"go", "build", "-o", "main", "main.go"}},
	{"java", "Main.java", `public class Main { public static void main(String[] a) { System.out.println("hello"); } }`, []string{"java", "-cp", ".", "Main"}, []string{"javac", "-d", ".", "Main.java"}},
	{"rust", "main.rs", `fn main() { println!("hello"); }`, []string{"./main"}, []string{"rustc", "-O", "-o", "main", "main.rs"}},
	{"ruby", "main.rb", `puts "hello"`, []string{"ruby", "main.rb"}, nil},
	{"php", "main.php", `<?php echo "hello\n";`, []string{"php", "main.php"}, nil},
	{"lua", "main.lua", `print("hello")`, []string{"lua5.4", "main.lua"}, nil},
	{"bash", "main.sh", `echo hello`, []string{"bash", "main.sh"}, nil},
	{"csharp", "main.cs", `class P { static void Main() { System.Console.WriteLine("hello"); } }`, []string{"mono", "main.exe"}, []string{"mcs", "-out:main.exe", "main.cs"}},
}

func median(xs []time.Duration) time.Duration {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d.Microseconds())/1000) }

func main() {
	bin := flag.String("bin", "bin/sandboxd", "sandboxd binary")
	n := flag.Int("n", 20, "runs per language")
	out := flag.String("out", "docs/benchmarks-languages.md", "where to write the table ('' for nowhere)")
	flag.Parse()
	dir, _ := os.MkdirTemp("", "sandboxd-bench-langs-")
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	sock := filepath.Join(dir, "sock")
	catalog, _ := filepath.Abs("languages/catalog.toml")
	d := exec.Command(*bin, "serve", "--socket", sock, "--state-dir", filepath.Join(dir, "state"), "--run-dir",
		filepath.Join(dir, "run"), "--catalog", catalog, "--log-level", "warn", "--pool-size", "4", "--cgroup-parent", "sandboxd-bench-langs")
	d.Stderr = os.Stderr
	if err := d.Start(); err != nil {
		fail(err)
	}
	defer func() { _ = d.Process.Signal(syscall.SIGTERM); _ = d.Wait() }()
	c := client.New(sock)
	ctx := context.Background()
	for i := 0; ; i++ {
		if _, err := c.Health(ctx); err == nil {
			break
		}
		if i > 200 {
			fail(fmt.Errorf("the daemon did not start"))
		}
		time.Sleep(25 * time.Millisecond)
	}
	list, err := exec.Command("scripts/build-images.sh", "--list").Output()
	if err != nil {
		fail(fmt.Errorf("listing images (run make images): %w", err))
	}
	sc := bufio.NewScanner(strings.NewReader(string(list)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 4 {
			continue
		}
		stream := dirtar.Stream(f[3])
		_, err := c.Import(ctx, stream, f[2])
		stream.Close()
		if err != nil {
			fail(fmt.Errorf("import %s: %w", f[2], err))
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "| language | through the API, median ms | bare on the host, median ms | difference ms | compile once, ms |\n|---|---|---|---|---|\n")
	for _, p := range programs {
		req := &api.ExecuteRequest{Language: p.lang, Files: []api.File{{Name: p.main, Content: p.src}}}
		first, err := c.ExecuteLanguage(ctx, req)
		if err != nil || first.Status != "ok" {
			fmt.Fprintf(&b, "| %s | failed: %v %v | | | |\n", p.lang, err, statusOf(first))
			continue
		}
		compile := "—"
		if first.Compile != nil {
			compile = fmt.Sprintf("%.0f", first.Compile.WallTimeMS)
		}
		var api []time.Duration
		for i := 0; i < *n; i++ {
			start := time.Now()
			r, err := c.ExecuteLanguage(ctx, req)
			if err != nil || r.Status != "ok" {
				fail(fmt.Errorf("%s: %v %v", p.lang, err, statusOf(r)))
			}
			api = append(api, time.Since(start))
		}
		bareCell, diff := "no toolchain on the host", "—"
		if bare := bareRuns(p, *n, dir); bare != nil {
			bareCell = ms(median(bare))
			diff = ms(median(api) - median(bare))
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", p.lang, ms(median(api)), bareCell, diff, compile)
	}
	table := b.String()
	fmt.Print(table)
	if *out != "" {
		doc := fmt.Sprintf("# Hello world per language\n\nWritten by `make bench-langs` (`bench/langs`) on %s. Each language's hello world, %d times, end to end through the API (request sent, response read; warm pool on; compiled languages after one compile, whose time is the last column, so the runs hit the compile cache), beside the same program started bare on the host where the host has the toolchain. Medians; compare the difference, not the absolute figures.\n\n%s",
			time.Now().UTC().Format("2006-01-02"), *n, table)
		if err := os.WriteFile(*out, []byte(doc), 0o644); err != nil {
			fail(err)
		}
	}
}

func statusOf(r *api.LanguageResponse) string {
	if r == nil {
		return ""
	}
	return r.Status
}

func bareRuns(p hello, n int, tmp string) []time.Duration {
	if _, err := exec.LookPath(p.bare[0]); err != nil && !strings.HasPrefix(p.bare[0], "./") {
		return nil
	}
	dir := filepath.Join(tmp, "bare-"+p.lang)
	os.MkdirAll(dir, 0o755)
	if err := os.WriteFile(filepath.Join(dir, p.main), []byte(p.src), 0o644); err != nil {
		return nil
	}
	if p.prepare != nil {
		if _, err := exec.LookPath(p.prepare[0]); err != nil {
			return nil
		}
		cmd := exec.Command(p.prepare[0], p.prepare[1:]...)
		cmd.Dir = dir
		if err := cmd.Run(); err != nil {
			return nil
		}
	}
	var out []time.Duration
	for i := 0; i < n; i++ {
		cmd := exec.Command(p.bare[0], p.bare[1:]...)
		cmd.Dir = dir
		start := time.Now()
		if err := cmd.Run(); err != nil {
			return nil
		}
		out = append(out, time.Since(start))
	}
	return out
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench-langs:", err)
	os.Exit(1)
}
