package compat_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// npmCache is where the tests' npm packages are installed, outside the
// checkout, reused while their lock file is unchanged.
const npmCache = "/var/cache/sandboxd/npm"

// npmModules installs the package.json and package-lock.json of dir with
// `npm ci` into npmCache/name, unless the lock file there is already
// the same, and returns that directory.
func npmModules(t *testing.T, dir, name string) string {
	t.Helper()
	lock, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(npmCache, name)
	if have, err := os.ReadFile(filepath.Join(dst, "package-lock.json")); err == nil && bytes.Equal(have, lock) {
		if _, err := os.Stat(filepath.Join(dst, "node_modules")); err == nil {
			return dst
		}
	}
	if _, err := exec.LookPath("npm"); err != nil {
		t.Fatal("npm is not installed: `make test` installs nodejs and npm")
	}
	// Installed beside, then renamed into place: an interrupted install
	// never passes for a complete one.
	tmp := dst + ".new"
	for _, p := range []string{tmp, dst} {
		if err := os.RemoveAll(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"package.json", "package-lock.json"} {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err == nil {
			err = os.WriteFile(filepath.Join(tmp, f), data, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts")
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci: %v\n%s", err, out)
	}
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatal(err)
	}
	return dst
}

// pistonCase is one execution for run.mjs.
type pistonCase struct {
	Language string   `json:"language"`
	Code     string   `json:"code"`
	Stdin    *string  `json:"stdin,omitempty"`
	Args     []string `json:"args,omitempty"`
}

type pistonStage struct {
	Stdout, Stderr, Output string
	Code                   *int
	Signal, Status         *string
}

type pistonResult struct {
	Language, Version string
	Run               *pistonStage
	Compile           *pistonStage
	Message           string
}

// runPistonClient runs the cases through piston-client against url.
func runPistonClient(t *testing.T, url string, cases []pistonCase) (runtimes []map[string]any, results []pistonResult) {
	t.Helper()
	modules := npmModules(t, "pistonclient", "piston-client")
	in, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", "pistonclient/run.mjs", modules, url)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node run.mjs: %v\n%s", err, stderr.String())
	}
	var got struct {
		Runtimes []map[string]any `json:"runtimes"`
		Results  []pistonResult   `json:"results"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("run.mjs printed %q: %v", out, err)
	}
	if len(got.Results) != len(cases) {
		t.Fatalf("%d results for %d cases", len(got.Results), len(cases))
	}
	return got.Runtimes, got.Results
}

// testPiston runs hello world with stdin in every language of the catalog
// through piston-client, then a compile error and an unknown language.
func testPiston(t *testing.T, d *compatDaemon) {
	world := "world\n"
	var cases []pistonCase
	for _, p := range programs {
		cases = append(cases, pistonCase{Language: p.piston, Code: p.code, Stdin: &world})
	}
	cases = append(cases,
		pistonCase{Language: "c", Code: "int main(void) { return undeclared; }"},
		pistonCase{Language: "intercal", Code: "x"},
		pistonCase{Language: "bash", Code: `echo "$#:$*"; exit 3`, Args: []string{"a b", "c"}})
	runtimes, results := runPistonClient(t, d.url, cases)

	names := map[string]bool{}
	for _, rt := range runtimes {
		names[rt["language"].(string)] = true
		if v, _ := rt["version"].(string); v == "" {
			t.Errorf("runtime %v has no version", rt)
		}
	}
	for i, p := range programs {
		if !names[p.piston] {
			t.Errorf("GET /api/v2/runtimes lacks %s: %v", p.piston, runtimes)
		}
		r := results[i]
		if r.Run == nil || r.Run.Stdout != "hello, world\n" || r.Run.Code == nil || *r.Run.Code != 0 || r.Language != p.piston || r.Version == "" {
			t.Errorf("%s: %+v run %+v", p.piston, r, r.Run)
		} else if r.Run.Output != r.Run.Stdout+r.Run.Stderr {
			t.Errorf("%s: output %q, want stdout then stderr", p.piston, r.Run.Output)
		}
	}
	n := len(programs)
	if ce := results[n]; ce.Compile == nil || ce.Compile.Code == nil || *ce.Compile.Code == 0 ||
		!strings.Contains(ce.Compile.Stderr, "undeclared") || ce.Run == nil || ce.Run.Stderr != ce.Compile.Stderr {
		t.Errorf("compile error: %+v compile %+v run %+v (Piston gives the compile stage as run)", ce, ce.Compile, ce.Run)
	}
	if unknown := results[n+1]; !strings.Contains(unknown.Message, "intercal") || unknown.Run != nil {
		t.Errorf("unknown language: %+v, want Piston's {\"message\": ...}", unknown)
	}
	if args := results[n+2]; args.Run == nil || args.Run.Stdout != "2:a b c\n" || args.Run.Code == nil || *args.Run.Code != 3 ||
		args.Run.Status == nil || *args.Run.Status != "RE" {
		t.Errorf("args and exit code: %+v", args.Run)
	}
}
