package testsets

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/errdefs"
)

// assemble makes a set of what x extracted into dir: testset.toml, if
// any, read and checked; every other file a test's .in, .ans or .out, or
// a file the checker or interactor names; each test with its input and
// one answer, stored as NAME.in and NAME.ans.
func assemble(dir string, x *extractor, l Limits) (*api.Testset, error) {
	m := &manifest{}
	if size, ok := x.files[ManifestName]; ok {
		if size > maxManifestBytes {
			return nil, fmt.Errorf("%w: %s is larger than %d bytes", errTooLarge, ManifestName, maxManifestBytes)
		}
		data, err := os.ReadFile(filepath.Join(dir, ManifestName))
		if err != nil {
			return nil, fmt.Errorf("testsets: %w", err)
		}
		if m, err = parseManifest(data); err != nil {
			return nil, err
		}
	}
	inputs, answers, err := classify(x.files, m)
	if err != nil {
		return nil, err
	}
	if len(inputs) > l.MaxTests {
		return nil, fmt.Errorf("%w: %d tests, more than %d ([testsets] max_tests)", errTooLarge, len(inputs), l.MaxTests)
	}
	tests, err := order(inputs, answers, m.Tests)
	if err != nil {
		return nil, err
	}
	for i := range tests {
		t := &tests[i]
		t.InputBytes = x.files[t.Name+extIn]
		ans := answers[t.Name]
		t.AnswerBytes = x.files[ans]
		if ans != t.Name+extAns {
			if err := os.Rename(filepath.Join(dir, ans), filepath.Join(dir, t.Name+extAns)); err != nil {
				return nil, fmt.Errorf("testsets: %w", err)
			}
		}
	}
	return &api.Testset{TestCount: len(tests), Bytes: x.bytes, Tests: tests, Groups: m.Groups, Compare: m.Compare,
		Checker: m.Checker, CheckerLimits: m.CheckerLimits, Interactor: m.Interactor, InteractorLimits: m.InteractorLimits}, nil
}

// classify sorts the archive's files: inputs by test, the answer file of
// each test, and refuses any file that is none of a set's.
func classify(files map[string]int64, m *manifest) (inputs map[string]bool, answers map[string]string, err error) {
	programs := map[string]bool{}
	for _, p := range []*api.TestsetProgram{m.Checker, m.Interactor} {
		if p == nil {
			continue
		}
		for _, f := range p.Files {
			if _, ok := files[f]; !ok {
				return nil, nil, fmt.Errorf("%w: %s names %q, which is not in the archive", errBadArchive, ManifestName, f)
			}
			programs[f] = true
		}
	}
	inputs, answers = map[string]bool{}, map[string]string{}
	for _, name := range sortedKeys(files) {
		test, ext, ok := splitTestFile(name)
		switch {
		case name == ManifestName || programs[name]:
		case !ok:
			return nil, nil, fmt.Errorf("%w: %q is not a test's NAME.in, NAME.ans or NAME.out, %s, or a file its [checker] or [interactor] names",
				errBadArchive, name, ManifestName)
		case ext == extIn:
			inputs[test] = true
		case answers[test] != "":
			return nil, nil, fmt.Errorf("%w: test %q has two answers, %s and %s: keep one", errBadArchive, test, answers[test], name)
		default:
			answers[test] = name
		}
	}
	for t := range inputs {
		if answers[t] == "" {
			return nil, nil, fmt.Errorf("%w: %s has no answer (%s or %s)", errBadArchive, t+extIn, t+extAns, t+extOut)
		}
	}
	for t, a := range answers {
		if !inputs[t] {
			return nil, nil, fmt.Errorf("%w: %s has no input (%s)", errBadArchive, a, t+extIn)
		}
	}
	if len(inputs) == 0 {
		return nil, nil, fmt.Errorf("%w: no tests: an archive holds NAME.in with NAME.ans (or NAME.out) for each test", errBadArchive)
	}
	return inputs, answers, nil
}

// order is the tests' running order: testset.toml's [[test]] list, which
// must then name every test once, or the names in natural order.
func order(inputs map[string]bool, answers map[string]string, listed []api.TestsetTest) ([]api.TestsetTest, error) {
	if listed == nil {
		names := sortedKeys(inputs)
		slices.SortFunc(names, func(a, b string) int {
			if naturalLess(a, b) {
				return -1
			}
			return 1
		})
		out := make([]api.TestsetTest, len(names))
		for i, n := range names {
			out[i] = api.TestsetTest{Name: n}
		}
		return out, nil
	}
	out := slices.Clone(listed)
	for _, t := range out {
		if !inputs[t.Name] {
			return nil, fmt.Errorf("%w: %s lists test %q, which has no %s in the archive", errBadArchive, ManifestName, t.Name, t.Name+extIn)
		}
	}
	if len(out) != len(inputs) {
		var missing []string
		for n := range inputs {
			if !slices.ContainsFunc(out, func(t api.TestsetTest) bool { return t.Name == n }) {
				missing = append(missing, n)
			}
		}
		slices.Sort(missing)
		return nil, fmt.Errorf("%w: %s lists tests, but not %s: list every test, or none", errBadArchive, ManifestName, strings.Join(missing, ", "))
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// ErrUnknown is a test set that does not exist, was deleted, or is
// another owner's: they look the same to a caller.
var ErrUnknown = errdefs.New(errdefs.ErrNotFound, "no test set with this id (it never existed, was deleted, or is another caller's)")
