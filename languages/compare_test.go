package languages

import "testing"

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
