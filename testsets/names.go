package testsets

import (
	"strings"
)

// maxNameBytes bounds a file's, test's or group's name.
const maxNameBytes = 100

// Extensions of a test's files: its input, and its answer under either
// name judges use.
const (
	extIn  = ".in"
	extAns = ".ans"
	extOut = ".out"
)

// validName is a file name of an archive's top level, or a group's
// name: letters, digits, '.', '_' and '-', not starting with '.', so
// that it is never "..", a hidden file or a path.
func validName(n string) bool {
	if n == "" || len(n) > maxNameBytes || n[0] == '.' {
		return false
	}
	for _, r := range n {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// splitTestFile returns a test file's test name and extension (".in",
// ".ans", ".out"), or ok false for any other name.
func splitTestFile(n string) (test, ext string, ok bool) {
	for _, e := range []string{extIn, extAns, extOut} {
		if stem, found := strings.CutSuffix(n, e); found && validName(stem) {
			return stem, e, true
		}
	}
	return "", "", false
}

func testFile(n string) bool { _, _, ok := splitTestFile(n); return ok }

// naturalLess orders names as people number tests: runs of digits by
// their value (2 before 10), the rest byte by byte; equal values with
// other spellings ("01", "1") by the plain order.
func naturalLess(a, b string) bool {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		if isDigit(a[i]) && isDigit(b[j]) {
			ea, eb := digitsEnd(a, i), digitsEnd(b, j)
			na, nb := strings.TrimLeft(a[i:ea], "0"), strings.TrimLeft(b[j:eb], "0")
			if len(na) != len(nb) {
				return len(na) < len(nb)
			}
			if na != nb {
				return na < nb
			}
			i, j = ea, eb
			continue
		}
		if a[i] != b[j] {
			return a[i] < b[j]
		}
		i, j = i+1, j+1
	}
	if len(a)-i != len(b)-j {
		return len(a)-i < len(b)-j
	}
	return a < b
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func digitsEnd(s string, i int) int {
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return i
}
