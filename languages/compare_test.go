package languages

import (
	"math"
	"testing"

	"github.com/sandboxd/sandboxd/api"
)

func TestOutputMatches(t *testing.T) {
	tests := []struct {
		got, want string
		match     bool
	}{
		{"3\n", "3", true},
		{"3   \n\n\n", "3", true},
		{"1 2 \r\n3\t\n", "1 2\n3", true},
		{"a\n\nb\n", "a\nb\n", false},
		{" 3\n", "3\n", false},
		{"3\n4\n", "3\n", false},
		{"", "\n\n", true},
		{"x", "X", false},
	}
	for _, tt := range tests {
		if got := OutputMatches(tt.got, tt.want); got != tt.match {
			t.Errorf("OutputMatches(%q, %q) = %v, want %v", tt.got, tt.want, got, tt.match)
		}
	}
}

func f(v float64) *float64 { return &v }

func TestComparisons(t *testing.T) {
	tests := []struct {
		compare   api.Compare
		got, want string
		match     bool
	}{
		{api.Compare{Mode: "exact"}, "3\n", "3\n", true},
		{api.Compare{Mode: "exact"}, "3\n", "3", false},
		{api.Compare{Mode: "exact"}, "3 \n", "3\n", false},
		{api.Compare{Mode: "exact"}, "3\r\n", "3\n", false},
		{api.Compare{Mode: "exact", CaseInsensitive: true}, "YES\n", "yes\n", true},
		{api.Compare{Mode: "lines"}, "1 2 \r\n3\t\n\n", "1 2\n3", true},
		{api.Compare{Mode: "lines"}, "1  2\n", "1 2\n", false},
		{api.Compare{Mode: "lines"}, "Yes\n", "yes\n", false},
		{api.Compare{Mode: "lines", CaseInsensitive: true}, "Yes\n", "yes\n", true},
		{api.Compare{Mode: "tokens"}, "1\n  2\t3\r\n\n", "1 2 3", true},
		{api.Compare{Mode: "tokens"}, "1 2", "1 2 3", false},
		{api.Compare{Mode: "tokens"}, "12 3", "1 23", false},
		{api.Compare{Mode: "tokens"}, "", "   \n", true},
		{api.Compare{Mode: "float"}, "0.000000001", "1e-9", true},
		{api.Compare{Mode: "float"}, "3.1415927", "3.14159265", true},
		{api.Compare{Mode: "float"}, "3.1416", "3.14159265", false},
		{api.Compare{Mode: "float"}, "1000000.5", "1000000", true}, // relative: 5e-7
		{api.Compare{Mode: "float"}, "1000002", "1000000", false},
		{api.Compare{Mode: "float", AbsTol: f(0.01), RelTol: f(0)}, "3.14", "3.1415", true},
		{api.Compare{Mode: "float", AbsTol: f(0), RelTol: f(0)}, "1.0", "1", true},
		{api.Compare{Mode: "float", AbsTol: f(0), RelTol: f(0)}, "1.0000001", "1", false},
		{api.Compare{Mode: "float"}, "nan", "nan", true},
		{api.Compare{Mode: "float"}, "NaN", "nan", false},
		{api.Compare{Mode: "float", CaseInsensitive: true}, "NaN", "nan", true},
		{api.Compare{Mode: "float"}, "1.0", "nan", false},
		{api.Compare{Mode: "float"}, "inf", "1e308", false},
		{api.Compare{Mode: "float"}, "1e999", "1e999", true},
		{api.Compare{Mode: "float"}, "0x1p0", "1", false},
		{api.Compare{Mode: "float"}, "YES 2.0000001", "YES 2", true},
		{api.Compare{Mode: "float"}, "yes 2", "YES 2", false},
		{api.Compare{Mode: "float"}, "1 2", "1 2 3", false},
		{api.Compare{Mode: "float"}, "-0.0000001 +5", "0 5.", true},
		{api.Compare{Mode: "unordered_lines"}, "b\na \r\nc\n\n", "a\nb\nc", true},
		{api.Compare{Mode: "unordered_lines"}, "a\na\nb\n", "a\nb\nb\n", false},
		{api.Compare{Mode: "unordered_lines"}, "a b\n", "b a\n", false},
		{api.Compare{Mode: "unordered_lines", CaseInsensitive: true}, "B\na\n", "A\nb\n", true},
	}
	for _, tt := range tests {
		c, err := ParseCompare(&tt.compare, LinesComparison, "compare")
		if err != nil {
			t.Fatalf("ParseCompare(%+v): %v", tt.compare, err)
		}
		if got := c.Match(tt.got, tt.want); got != tt.match {
			t.Errorf("%+v: Match(%q, %q) = %v, want %v", tt.compare, tt.got, tt.want, got, tt.match)
		}
	}
}

func TestParseCompareRefuses(t *testing.T) {
	for _, c := range []api.Compare{
		{Mode: ""},
		{Mode: "floats"},
		{Mode: "tokens", AbsTol: f(1)},
		{Mode: "float", AbsTol: f(-1)},
		{Mode: "float", RelTol: f(0), AbsTol: f(math.Inf(1))},
	} {
		if _, err := ParseCompare(&c, LinesComparison, "compare"); err == nil {
			t.Errorf("ParseCompare(%+v) accepted", c)
		}
	}
	def := Comparison{Mode: api.CompareTokens}
	if c, err := ParseCompare(nil, def, "compare"); err != nil || c != def {
		t.Errorf("ParseCompare(nil) = %+v, %v; want the default", c, err)
	}
}
