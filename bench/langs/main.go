// Command langs is `make bench-langs`: hello world in every language of the
// catalog, end to end through the daemon's API (warm pool on; compiled
// languages measured on the run, after one compile), beside the same
// program run bare on the host: the image's own toolchain, with the
// catalog's own command lines, in a chroot of the image (an overlay of it,
// with /proc and /dev), without namespaces, cgroups or seccomp. Each
// language is measured twice: paced (one request every -pace, slower than
// sandboxes are built, so a parked one is ready as at a moderate request
// rate) and back to back (the daemon saturated: most requests wait for a
// sandbox to be built). It prints a table and writes it to
// docs/benchmarks-languages.md.
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

	"golang.org/x/sys/unix"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/client"
	"github.com/sandboxd/sandboxd/languages"
	sblimits "github.com/sandboxd/sandboxd/limits"
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

type hello struct{ lang, main, src string }

var programs = []hello{
	{"python", "main.py", `print("hello")`},
	{"javascript", "main.js", `console.log("hello")`},
	{"c", "main.c", "#include <stdio.h>\nint main(void){puts(\"hello\");return 0;}"},
	{"cpp", "main.cpp", "#include <iostream>\nint main(){std::cout<<\"hello\"<<std::endl;}"},
	{"go", "main.go", "package main\nimport \"fmt\"\nfunc main(){fmt.Println(\"hello\")}"},
	{"java", "Main.java", `public class Main { public static void main(String[] a) { System.out.println("hello"); } }`},
	{"rust", "main.rs", `fn main() { println!("hello"); }`},
	{"ruby", "main.rb", `puts "hello"`},
	{"php", "main.php", `<?php echo "hello\n";`},
	{"lua", "main.lua", `print("hello")`},
	{"bash", "main.sh", `echo hello`},
	{"csharp", "main.cs", `class P { static void Main() { System.Console.WriteLine("hello"); } }`},
}

func median(xs []time.Duration) time.Duration {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d.Microseconds())/1000) }

func main() {
	bin := flag.String("bin", "bin/sandboxd", "sandboxd binary")
	n := flag.Int("n", 20, "runs per language, paced and again back to back")
	pace := flag.Duration("pace", 100*time.Millisecond, "pause before each paced request")
	out := flag.String("out", "docs/benchmarks-languages.md", "where to write the table ('' for nowhere)")
	flag.Parse()
	// Errors come back here, after run's deferred calls have stopped the
	// daemon and unmounted what the bare runs mounted.
	if err := run(*bin, *n, *pace, *out); err != nil {
		fail(err)
	}
}

func run(bin string, n int, pace time.Duration, out string) error {
	dir, _ := os.MkdirTemp("", "sandboxd-bench-langs-")
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	catalog, _ := filepath.Abs("languages/catalog.toml")
	d, err := testdaemon.Launch(testdaemon.Config{Bin: bin, Dir: dir, LogLevel: "warn", CgroupParent: "sandboxd-bench-langs",
		Args: []string{"--catalog", catalog, "--pool-size", "4"}})
	if err != nil {
		return err
	}
	defer func() {
		if err := d.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "bench-langs:", err)
		}
	}()
	ctx := context.Background()
	list, err := exec.Command("scripts/build-images.sh", "--list").Output()
	if err != nil {
		return fmt.Errorf("listing images (run make images): %w", err)
	}
	cat, err := languages.Load(catalog)
	if err != nil {
		return err
	}
	roots, err := importImages(ctx, d, list)
	if err != nil {
		return err
	}
	lb := &langBench{c: d.Client, cat: cat, roots: roots, n: n, pace: pace, dir: dir}
	var b strings.Builder
	fmt.Fprintf(&b, "| language | API, paced, median ms | bare on the host, median ms | difference, paced, ms | API, back to back, median ms | compile once, ms |\n|---|---|---|---|---|---|\n")
	for _, p := range programs {
		row, err := lb.row(ctx, p)
		if err != nil {
			return err
		}
		b.WriteString(row)
	}
	table := b.String()
	fmt.Print(table)
	if out != "" {
		return writeDoc(out, n, pace, table)
	}
	return nil
}

// importImages imports every image `scripts/build-images.sh --list`
// printed (list) and returns each one's rootfs by name.
func importImages(ctx context.Context, d *testdaemon.Daemon, list []byte) (map[string]string, error) {
	roots := map[string]string{} // image name -> rootfs
	sc := bufio.NewScanner(strings.NewReader(string(list)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 4 {
			continue
		}
		roots[f[2]] = f[3]
		if _, err := d.Import(ctx, f[2], f[3]); err != nil {
			return nil, err
		}
	}
	return roots, nil
}

// langBench is what measuring one language needs.
type langBench struct {
	c     *client.Client
	cat   *languages.Catalog
	roots map[string]string // image name -> rootfs
	n     int
	pace  time.Duration
	dir   string // the bare runs' overlays go here
}

// row measures p through the API and bare and returns its table row. A
// language whose first run fails gets a row saying so; a later failure
// ends the benchmark.
func (lb *langBench) row(ctx context.Context, p hello) (string, error) {
	req := &api.ExecuteRequest{Language: p.lang, Files: []api.File{{Name: p.main, Content: p.src}}}
	first, err := lb.c.ExecuteLanguage(ctx, req)
	if err != nil || first.Status != "ok" {
		return fmt.Sprintf("| %s | failed: %v %v | | | |\n", p.lang, err, statusOf(first)), nil
	}
	compile := "—"
	if first.Compile != nil {
		compile = fmt.Sprintf("%.0f", first.Compile.WallTimeMS)
	}
	paced, backToBack, err := lb.apiRuns(ctx, p.lang, req)
	if err != nil {
		return "", err
	}
	bareCell, diff := "", "—"
	if bare, err := bareRuns(lb.cat, lb.roots, p, lb.n, lb.pace, lb.dir); err != nil {
		bareCell = "failed: " + err.Error()
	} else {
		bareCell = ms(median(bare))
		diff = ms(median(paced) - median(bare))
	}
	return fmt.Sprintf("| %s | %s | %s | %s | %s | %s |\n", p.lang, ms(median(paced)), bareCell, diff, ms(median(backToBack)), compile), nil
}

// apiRuns times n paced requests, each -pace after the previous answer,
// then n back to back.
func (lb *langBench) apiRuns(ctx context.Context, lang string, req *api.ExecuteRequest) (paced, backToBack []time.Duration, err error) {
	n := lb.n
	for i := 0; i < 2*n; i++ {
		if i < n {
			time.Sleep(lb.pace)
		}
		start := time.Now()
		r, err := lb.c.ExecuteLanguage(ctx, req)
		if err != nil || r.Status != "ok" {
			return nil, nil, fmt.Errorf("%s: %v %v", lang, err, statusOf(r))
		}
		if i < n {
			paced = append(paced, time.Since(start))
		} else {
			backToBack = append(backToBack, time.Since(start))
		}
	}
	return paced, backToBack, nil
}

// writeDoc writes the table to out with what it measured and how.
func writeDoc(out string, n int, pace time.Duration, table string) error {
	doc := fmt.Sprintf("# Hello world per language\n\nWritten by `make bench-langs` (`bench/langs`) on %s. Each language's hello world end to end through the API (request sent, response read; warm pool on; compiled languages after one compile, whose time is the last column, so the runs hit the compile cache), beside the same program started bare on the host: the image's own binaries and the catalog's own command lines, in a chroot of the image with /proc and /dev, without namespaces, cgroups or seccomp, paced like the API runs. Paced: %d requests, each %v after the previous answer, so that a parked sandbox is ready, as at any request rate below what the host can build (about 70 sandboxes a second here). Back to back: %d more with no pause, the daemon saturated, so that most wait for a sandbox to be built. Medians; compare the difference, not the absolute figures.\n\n%s",
		time.Now().UTC().Format("2006-01-02"), n, pace, n, table)
	return os.WriteFile(out, []byte(doc), 0o644)
}

func statusOf(r *api.LanguageResponse) string {
	if r == nil {
		return ""
	}
	return r.Status
}

// bareRuns runs the program n times without a sandbox: the catalog's
// compile and run command lines, in a chroot of an overlay of the
// language's image (with the host's /proc and /dev), so that the binaries,
// libraries and flags are the sandbox's own; paced like the API runs.
func bareRuns(cat *languages.Catalog, roots map[string]string, p hello, n int, pace time.Duration, tmp string) (_ []time.Duration, err error) {
	lang, err := cat.Lookup(p.lang)
	if err != nil {
		return nil, err
	}
	lower, ok := roots[lang.Image]
	if !ok {
		return nil, fmt.Errorf("image %s is not built", lang.Image)
	}
	base := filepath.Join(tmp, "bare-"+p.lang)
	upper, work, root := filepath.Join(base, "upper"), filepath.Join(base, "work"), filepath.Join(base, "root")
	for _, d := range []string{upper, work, root} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	if err := unix.Mount("overlay", root, "overlay", 0, "lowerdir="+lower+",upperdir="+upper+",workdir="+work); err != nil {
		return nil, fmt.Errorf("overlay of %s: %w", lower, err)
	}
	defer unix.Unmount(root, unix.MNT_DETACH)
	if err := unix.Mount("proc", filepath.Join(root, "proc"), "proc", 0, ""); err != nil {
		return nil, fmt.Errorf("proc: %w", err)
	}
	defer unix.Unmount(filepath.Join(root, "proc"), unix.MNT_DETACH)
	if err := unix.Mount("/dev", filepath.Join(root, "dev"), "", unix.MS_BIND, ""); err != nil {
		return nil, fmt.Errorf("dev: %w", err)
	}
	defer unix.Unmount(filepath.Join(root, "dev"), unix.MNT_DETACH)
	if err := os.MkdirAll(filepath.Join(root, "bare"), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(root, "bare", p.main), []byte(p.src), 0o644); err != nil {
		return nil, err
	}
	limits := lang.RunLimits().Over(sblimits.Defaults())
	env := append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/bare", "TMPDIR=/tmp"}, lang.Env...)
	command := func(argv []string) *exec.Cmd {
		// exec would look the name up on the host: find it in the image.
		name := argv[0]
		if !strings.Contains(name, "/") {
			for _, dir := range filepath.SplitList(strings.TrimPrefix(env[0], "PATH=")) {
				// Lstat: a symlink (Debian's alternatives) points into the image.
				if st, err := os.Lstat(filepath.Join(root, dir, name)); err == nil && !st.IsDir() {
					name = filepath.Join(dir, name)
					break
				}
			}
		}
		cmd := exec.Command(name, argv[1:]...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
		cmd.Dir, cmd.Env = "/bare", env
		return cmd
	}
	files := lang.Sources([]string{p.main})
	if lang.Compiled() {
		compileLimits := lang.BuildLimits().Over(limits)
		argv := languages.Expand(lang.Compile, languages.Vars{Main: p.main, Files: files, MemoryBytes: compileLimits.MemoryBytes})
		if out, err := command(argv).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("compile %v: %v: %s", argv, err, firstLine(string(out)))
		}
	}
	argv := languages.Expand(lang.Run, languages.Vars{Main: p.main, Files: files, MemoryBytes: limits.MemoryBytes})
	var out []time.Duration
	for i := 0; i < n; i++ {
		time.Sleep(pace)
		cmd := command(argv)
		start := time.Now()
		if msg, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("run %v: %v: %s", argv, err, firstLine(string(msg)))
		}
		out = append(out, time.Since(start))
	}
	return out, nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench-langs:", err)
	os.Exit(1)
}
