package languages

import (
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/errdefs"
)

// Default tolerances of the float comparison: six significant digits, as
// judges commonly ask of floating-point answers.
const (
	defaultAbsTol = 1e-6
	defaultRelTol = 1e-6
)

// Comparison is a settled api.Compare: how a test's output is held
// against its expected output when no checker is given (docs/judge.md).
type Comparison struct {
	Mode            string
	CaseInsensitive bool
	AbsTol, RelTol  float64
}

// LinesComparison is the default: today's rule, NormalizeOutput.
var LinesComparison = Comparison{Mode: api.CompareLines, AbsTol: defaultAbsTol, RelTol: defaultRelTol}

// ParseCompare settles c over def (the request's comparison for a test's,
// LinesComparison for the request's). field names the JSON field in
// errors. A nil c is def.
func ParseCompare(c *api.Compare, def Comparison, field string) (Comparison, error) {
	if c == nil {
		return def, nil
	}
	out := Comparison{Mode: c.Mode, CaseInsensitive: c.CaseInsensitive, AbsTol: defaultAbsTol, RelTol: defaultRelTol}
	switch c.Mode {
	case api.CompareLines, api.CompareExact, api.CompareTokens, api.CompareUnorderedLines:
		if c.AbsTol != nil || c.RelTol != nil {
			return out, errdefs.Invalidf(`%q: abs_tol and rel_tol belong to the "float" comparison, not %q`, field, c.Mode)
		}
	case api.CompareFloat:
		for _, tol := range []struct {
			name string
			v    *float64
			into *float64
		}{{"abs_tol", c.AbsTol, &out.AbsTol}, {"rel_tol", c.RelTol, &out.RelTol}} {
			if tol.v == nil {
				continue
			}
			if math.IsNaN(*tol.v) || math.IsInf(*tol.v, 0) || *tol.v < 0 {
				return out, errdefs.Invalidf(`%q: %s must be a finite number >= 0`, field, tol.name)
			}
			*tol.into = *tol.v
		}
	default:
		return out, errdefs.Invalidf(`%q: unknown comparison %q (lines, exact, tokens, float, unordered_lines)`, field, c.Mode)
	}
	return out, nil
}

// Match reports whether got, a program's output, matches want.
func (c Comparison) Match(got, want string) bool {
	if c.CaseInsensitive {
		got, want = strings.ToLower(got), strings.ToLower(want)
	}
	switch c.Mode {
	case api.CompareExact:
		return got == want
	case api.CompareTokens:
		return slices.Equal(strings.Fields(got), strings.Fields(want))
	case api.CompareFloat:
		return c.floatTokensMatch(strings.Fields(got), strings.Fields(want))
	case api.CompareUnorderedLines:
		g, w := normalizedLines(got), normalizedLines(want)
		slices.Sort(g)
		slices.Sort(w)
		return slices.Equal(g, w)
	default:
		return NormalizeOutput(got) == NormalizeOutput(want)
	}
}

// decimal is what the float comparison reads as a number. "nan", "inf"
// and hexadecimal floats, which strconv would take, stay words that must
// match exactly: an expected "nan" is not met by any number, nor by
// another NaN's spelling.
var decimal = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$`) })

func (c Comparison) floatTokensMatch(got, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range want {
		if !c.floatMatch(got[i], want[i]) {
			return false
		}
	}
	return true
}

// floatMatch: two numbers within either tolerance of the expected one, or
// the same word. A number too large for a float64 is a word.
func (c Comparison) floatMatch(got, want string) bool {
	if !decimal().MatchString(want) || !decimal().MatchString(got) {
		return got == want
	}
	w, errW := strconv.ParseFloat(want, 64)
	g, errG := strconv.ParseFloat(got, 64)
	if errW != nil || errG != nil {
		return got == want
	}
	d := math.Abs(g - w)
	return d <= c.AbsTol || d <= c.RelTol*math.Abs(w)
}

// normalizedLines are the lines of s under NormalizeOutput's rule.
func normalizedLines(s string) []string {
	n := NormalizeOutput(s)
	if n == "" {
		return nil
	}
	return strings.Split(n, "\n")
}

// NormalizeOutput is the "lines" rule for tests: trailing whitespace is
// removed from every line, then trailing blank lines are dropped; "\r\n"
// counts as "\n". Leading whitespace and blank lines in the middle matter.
func NormalizeOutput(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " \t\r\v\f")
	}
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return strings.Join(lines, "\n")
}

// OutputMatches reports whether got matches want under the "lines" rule.
func OutputMatches(got, want string) bool {
	return LinesComparison.Match(got, want)
}
