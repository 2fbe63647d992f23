// Package languages turns source code and a language name into stages run
// in sandboxes: it holds the catalog (which image, which compile and run
// commands, which limits) and the plan that compiles once and runs the
// program once, or once per test.
package languages

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/sandboxd/sandboxd/config"
	"github.com/sandboxd/sandboxd/errdefs"
	"github.com/sandboxd/sandboxd/limits"
)

// Language is one catalog entry. docs/languages.md documents every key.
type Language struct {
	Name    string   `toml:"name"`
	Aliases []string `toml:"aliases"`
	// Image is a local image name (built by a recipe) or an OCI reference.
	Image string `toml:"image"`
	// Main is the conventional name of the main file (main.py, Main.java).
	Main string `toml:"main"`
	// Compile and Run are argv templates: "{main}" is the main file's name
	// (the first file of the request), "{files}" expands to every source
	// file's name and "{memory}" is the stage's memory limit in bytes (for
	// runtimes that size their heap from a flag, as the JVM does: the
	// sandbox shows them no cgroup). The request's args follow Run.
	Compile []string `toml:"compile"`
	Run     []string `toml:"run"`
	// SourceExt, when set, limits "{files}" to files with these
	// extensions, so that headers are not handed to the compiler as
	// sources (g++ would turn them into precompiled headers).
	SourceExt []string `toml:"source_ext"`
	Env       []string `toml:"env"`
	// CodePrefix is put in front of the main file's content.
	CodePrefix string `toml:"code_prefix"`
	// VersionCmd prints the toolchain's version inside the image;
	// VersionRegexp's first group extracts it.
	VersionCmd    []string `toml:"version_cmd"`
	VersionRegexp string   `toml:"version_regexp"`
	// Limits and CompileLimits override the daemon's defaults for this
	// language; empty fields keep them. They are parsed once, at load,
	// into RunLimits and BuildLimits.
	Limits        config.Limits `toml:"limits"`
	CompileLimits config.Limits `toml:"compile_limits"`

	versionRE   *regexp.Regexp
	runLimits   limits.Partial
	buildLimits limits.Partial
}

// RunLimits are the catalog's run limits of l, parsed at load.
func (l *Language) RunLimits() limits.Partial { return l.runLimits }

// BuildLimits are the catalog's compile limits of l, parsed at load.
func (l *Language) BuildLimits() limits.Partial { return l.buildLimits }

// Compiled reports whether the language has a compile stage.
func (l *Language) Compiled() bool { return len(l.Compile) > 0 }

// Catalog is the set of languages the daemon offers.
type Catalog struct {
	Languages []*Language `toml:"language"`
	byName    map[string]*Language
}

// ErrUnknown is returned for a language or version the catalog lacks.
var ErrUnknown = errdefs.New(errdefs.ErrNotFound, "unknown language")

// Load reads a catalog file.
func Load(path string) (*Catalog, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	return Parse(string(data))
}

// Parse reads a catalog from TOML text and checks every entry.
func Parse(text string) (*Catalog, error) {
	var c Catalog
	md, err := toml.Decode(text, &c)
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		return nil, fmt.Errorf("catalog: unknown key %q", undecoded[0].String())
	}
	c.byName = map[string]*Language{}
	for i, l := range c.Languages {
		if err := l.check(); err != nil {
			return nil, fmt.Errorf("catalog: language %d (%s): %w", i, l.Name, err)
		}
		for _, n := range append([]string{l.Name}, l.Aliases...) {
			key := strings.ToLower(n)
			if _, dup := c.byName[key]; dup {
				return nil, fmt.Errorf("catalog: name %q is used twice", n)
			}
			c.byName[key] = l
		}
	}
	return &c, nil
}

func (l *Language) check() error {
	switch {
	case l.Name == "":
		return errors.New("name is empty")
	case l.Image == "":
		return errors.New("image is empty")
	case l.Main == "" || strings.Contains(l.Main, "/"):
		return errors.New("main must be a plain file name")
	case len(l.Run) == 0:
		return errors.New("run is empty")
	}
	var err error
	if l.runLimits, err = limits.FromConfig(l.Limits, "limits"); err != nil {
		return err
	}
	if l.buildLimits, err = limits.FromConfig(l.CompileLimits, "compile_limits"); err != nil {
		return err
	}
	if l.VersionRegexp != "" {
		re, err := regexp.Compile(l.VersionRegexp)
		if err != nil {
			return fmt.Errorf("version_regexp: %w", err)
		}
		l.versionRE = re
	}
	return nil
}

// Lookup finds a language by name or alias, case-insensitively.
func (c *Catalog) Lookup(name string) (*Language, error) {
	if l, ok := c.byName[strings.ToLower(name)]; ok {
		return l, nil
	}
	return nil, fmt.Errorf("%w %q; available: %s", ErrUnknown, name, strings.Join(c.Names(), ", "))
}

// Names lists the languages' names, sorted.
func (c *Catalog) Names() []string {
	var names []string
	for _, l := range c.Languages {
		names = append(names, l.Name)
	}
	sort.Strings(names)
	return names
}

// ParseVersion extracts the version from the version command's output.
func (l *Language) ParseVersion(out string) string {
	if l.versionRE == nil {
		return strings.TrimSpace(strings.SplitN(out, "\n", 2)[0])
	}
	m := l.versionRE.FindStringSubmatch(out)
	if len(m) < 2 {
		return ""
	}
	return m[1]
}

// VersionMatches reports whether a requested version selects the detected
// one: "3" matches "3.11.2", "3.11" matches "3.11.2", "3.1" does not.
func VersionMatches(requested, detected string) bool {
	if requested == "" {
		return true
	}
	if detected == "" {
		return false
	}
	return detected == requested || strings.HasPrefix(detected, requested+".")
}

// Sources returns the files "{files}" stands for.
func (l *Language) Sources(files []string) []string {
	if len(l.SourceExt) == 0 {
		return files
	}
	var out []string
	for _, f := range files {
		for _, ext := range l.SourceExt {
			if strings.HasSuffix(f, ext) {
				out = append(out, f)
				break
			}
		}
	}
	return out
}

// Vars are what a template's placeholders stand for.
type Vars struct {
	Main        string   // {main}
	Files       []string // {files}
	MemoryBytes int64    // {memory}
	// Options go before the first source placeholder ({files} or
	// {main}), after the template's own options, so that a compiler that
	// lets a later option win (-O0 after -O2) takes the caller's; with no
	// placeholder, at the end.
	Options []string
}

// Expand fills an argv template.
func Expand(tmpl []string, v Vars) []string {
	var out []string
	repl := strings.NewReplacer("{main}", v.Main, "{memory}", strconv.FormatInt(v.MemoryBytes, 10))
	opts := v.Options
	for _, a := range tmpl {
		if a == "{files}" || strings.Contains(a, "{main}") {
			out, opts = append(out, opts...), nil
		}
		switch {
		case a == "{files}":
			out = append(out, v.Files...)
		default:
			out = append(out, repl.Replace(a))
		}
	}
	return slices.Clip(append(out, opts...))
}
