package languages

import "strings"

// NormalizeOutput is the comparison rule for tests: trailing whitespace is
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

// OutputMatches reports whether got matches want under NormalizeOutput.
func OutputMatches(got, want string) bool {
	return NormalizeOutput(got) == NormalizeOutput(want)
}
