package runtime

import (
	"strings"
	"testing"
)

func TestRingKeepsTheLastBytes(t *testing.T) {
	tests := []struct {
		name   string
		limit  int64
		writes []string
		want   string
		cut    bool
	}{
		{"empty", 4, nil, "", false},
		{"under", 4, []string{"ab"}, "ab", false},
		{"exactly", 4, []string{"ab", "cd"}, "abcd", false},
		{"one write exactly the limit", 4, []string{"abcd"}, "abcd", false},
		{"one write over", 4, []string{"abcdef"}, "cdef", true},
		{"a limit-sized write after others", 4, []string{"x", "abcd"}, "abcd", true},
		{"wrapping", 4, []string{"abc", "de", "f"}, "cdef", true},
		{"wrapping many times", 3, strings.Split("abcdefghijklmnopq", ""), "opq", true},
		{"a write across the end", 5, []string{"abcd", "efgh"}, "defgh", true},
		{"a character cut at the front goes", 3, []string{"é", "ab"}, "ab", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Ring{Limit: tt.limit}
			for _, w := range tt.writes {
				r.Write([]byte(w))
			}
			if got := string(r.Bytes()); got != tt.want || r.Cut() != tt.cut {
				t.Errorf("got %q cut %v, want %q cut %v", got, r.Cut(), tt.want, tt.cut)
			}
			if int64(cap(r.buf)) > tt.limit {
				t.Errorf("the buffer grew to %d for a limit of %d", cap(r.buf), tt.limit)
			}
		})
	}
}
