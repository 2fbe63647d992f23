package testsets

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/BurntSushi/toml"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/errdefs"
)

// ManifestName is the optional file of an archive that says how its
// tests are judged.
const ManifestName = "testset.toml"

// manifestFile is testset.toml as written (docs/api.md "Test sets").
// Comparisons and limits take the API's names and shapes, so that a set
// says nothing a request could not: compare is a mode's name or a table
// of api.Compare's fields; checker_limits and interactor_limits have
// api.Limits' keys.
type manifestFile struct {
	Compare          any             `toml:"compare"`
	Groups           []manifestGroup `toml:"group"`
	Tests            []manifestTest  `toml:"test"`
	Checker          *manifestProg   `toml:"checker"`
	CheckerLimits    map[string]any  `toml:"checker_limits"`
	Interactor       *manifestProg   `toml:"interactor"`
	InteractorLimits map[string]any  `toml:"interactor_limits"`
}

type manifestGroup struct {
	Name          string   `toml:"name"`
	StopOnFailure *bool    `toml:"stop_on_failure"`
	DependsOn     []string `toml:"depends_on"`
}

type manifestTest struct {
	Name    string   `toml:"name"`
	Group   string   `toml:"group"`
	Points  *float64 `toml:"points"`
	Compare any      `toml:"compare"`
}

type manifestProg struct {
	Language string   `toml:"language"`
	Version  string   `toml:"version"`
	Files    []string `toml:"files"`
}

// manifest is testset.toml checked, in the API's types. Tests is nil
// when the file lists none (the tests then run in natural order).
type manifest struct {
	Compare          *api.Compare
	Groups           []api.Group
	Tests            []api.TestsetTest
	Checker          *api.TestsetProgram
	CheckerLimits    *api.Limits
	Interactor       *api.TestsetProgram
	InteractorLimits *api.Limits
}

// compareModes are the modes a set may name (api.Compare).
var compareModes = []string{api.CompareLines, api.CompareExact, api.CompareTokens, api.CompareFloat, api.CompareUnorderedLines}

// parseManifest reads testset.toml. Unknown keys are refused, as in the
// daemon's configuration: a typo must not silently change a verdict.
func parseManifest(data []byte) (*manifest, error) {
	var f manifestFile
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&f)
	if err != nil {
		return nil, errdefs.Invalidf("%s: %v", ManifestName, err)
	}
	for _, k := range md.Undecoded() {
		// What went into an any (a compare table, limits) is checked
		// below, against the API's fields; the rest is unknown.
		inAny := k[0] == "compare" || k[0] == "checker_limits" || k[0] == "interactor_limits" || len(k) > 1 && k[0] == "test" && k[1] == "compare"
		if !inAny {
			return nil, errdefs.Invalidf("%s: unknown key %q", ManifestName, k.String())
		}
	}
	m := &manifest{}
	if m.Compare, err = parseCompare(f.Compare, "compare"); err != nil {
		return nil, err
	}
	if m.Groups, err = parseGroups(f.Groups); err != nil {
		return nil, err
	}
	if m.Tests, err = parseTests(f.Tests, m.Groups); err != nil {
		return nil, err
	}
	if f.Checker != nil && f.Interactor != nil {
		return nil, errdefs.Invalidf("%s: [checker] and [interactor] exclude each other: an interactor gives the verdict", ManifestName)
	}
	if m.Checker, err = parseProgram(f.Checker, "checker"); err != nil {
		return nil, err
	}
	if m.Interactor, err = parseProgram(f.Interactor, "interactor"); err != nil {
		return nil, err
	}
	if m.CheckerLimits, err = parseLimits(f.CheckerLimits, f.Checker != nil, "checker"); err != nil {
		return nil, err
	}
	if m.InteractorLimits, err = parseLimits(f.InteractorLimits, f.Interactor != nil, "interactor"); err != nil {
		return nil, err
	}
	return m, nil
}

// parseCompare takes a mode's name or a table of api.Compare's fields.
func parseCompare(v any, where string) (*api.Compare, error) {
	if v == nil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, errdefs.Invalidf("%s: %s: %v", ManifestName, where, err)
	}
	var c api.Compare
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, errdefs.Invalidf("%s: %s: %v (a mode's name, or a table with mode, case_insensitive, abs_tol, rel_tol)", ManifestName, where, err)
	}
	if !slices.Contains(compareModes, c.Mode) {
		return nil, errdefs.Invalidf("%s: %s: mode %q: expected one of %v", ManifestName, where, c.Mode, compareModes)
	}
	return &c, nil
}

func parseGroups(in []manifestGroup) ([]api.Group, error) {
	var out []api.Group
	seen := map[string]bool{}
	for i, g := range in {
		if !validName(g.Name) {
			return nil, errdefs.Invalidf("%s: group %d: name %q: 1 to %d letters, digits, '.', '_' or '-'", ManifestName, i+1, g.Name, maxNameBytes)
		}
		if seen[g.Name] {
			return nil, errdefs.Invalidf("%s: group %q is declared twice", ManifestName, g.Name)
		}
		for _, d := range g.DependsOn {
			if !seen[d] {
				return nil, errdefs.Invalidf("%s: group %q depends on %q, which is not declared before it", ManifestName, g.Name, d)
			}
		}
		seen[g.Name] = true
		out = append(out, api.Group{Name: g.Name, StopOnFailure: g.StopOnFailure, DependsOn: g.DependsOn})
	}
	return out, nil
}

func parseTests(in []manifestTest, groups []api.Group) ([]api.TestsetTest, error) {
	var out []api.TestsetTest
	seen := map[string]bool{}
	for i, t := range in {
		if seen[t.Name] {
			return nil, errdefs.Invalidf("%s: test %q is listed twice", ManifestName, t.Name)
		}
		seen[t.Name] = true
		if t.Group != "" && !slices.ContainsFunc(groups, func(g api.Group) bool { return g.Name == t.Group }) {
			return nil, errdefs.Invalidf("%s: test %q: group %q is not declared ([[group]])", ManifestName, t.Name, t.Group)
		}
		if t.Points != nil && !(*t.Points >= 0) {
			return nil, errdefs.Invalidf("%s: test %q: points must be a number of at least 0", ManifestName, t.Name)
		}
		c, err := parseCompare(t.Compare, fmt.Sprintf("test %d compare", i+1))
		if err != nil {
			return nil, err
		}
		out = append(out, api.TestsetTest{Name: t.Name, Group: t.Group, Points: t.Points, Compare: c})
	}
	return out, nil
}

func parseProgram(p *manifestProg, what string) (*api.TestsetProgram, error) {
	if p == nil {
		return nil, nil
	}
	if p.Language == "" || len(p.Files) == 0 {
		return nil, errdefs.Invalidf("%s: [%s] needs language and files (the first is the main file)", ManifestName, what)
	}
	for _, f := range p.Files {
		if !validName(f) || f == ManifestName || testFile(f) {
			return nil, errdefs.Invalidf("%s: [%s] file %q: a name of the archive's top level (letters, digits, '.', '_', '-'), "+
				"not a test's .in, .ans or .out", ManifestName, what, f)
		}
	}
	return &api.TestsetProgram{Language: p.Language, Version: p.Version, Files: slices.Clone(p.Files)}, nil
}

// parseLimits takes api.Limits' keys, strictly; the values are checked
// against the daemon's maximums when a request runs the set.
func parseLimits(v map[string]any, has bool, what string) (*api.Limits, error) {
	if v == nil {
		return nil, nil
	}
	if !has {
		return nil, errdefs.Invalidf("%s: [%s_limits] without [%s]", ManifestName, what, what)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, errdefs.Invalidf("%s: [%s_limits]: %v", ManifestName, what, err)
	}
	var l api.Limits
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&l); err != nil {
		return nil, errdefs.Invalidf("%s: [%s_limits]: %v (the keys of a request's limits: wall_time_ms, memory_bytes, ...)", ManifestName, what, err)
	}
	return &l, nil
}
