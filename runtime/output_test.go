package runtime

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

func TestCaptureKeepsTheFirstBytesAndReportsOverflow(t *testing.T) {
	tests := []struct {
		name      string
		limit     int64
		writes    []string
		want      string
		truncated bool
	}{
		{"under", 10, []string{"abc"}, "abc", false},
		{"exactly", 3, []string{"abc"}, "abc", false},
		{"over in one write", 3, []string{"abcdef"}, "abc", true},
		{"over across writes", 4, []string{"ab", "cd", "ef"}, "abcd", true},
		// A first read that fills the small buffer, then larger reads.
		{"past the first reads", 20000, []string{strings.Repeat("a", firstReadBytes), "xyz", strings.Repeat("b", 9000)},
			strings.Repeat("a", firstReadBytes) + "xyz" + strings.Repeat("b", 9000), false},
		// Across the 64 KiB blocks, cut inside the third.
		{"over across blocks", 200000, []string{strings.Repeat("a", 70000), strings.Repeat("b", 70000), strings.Repeat("c", 70000)},
			strings.Repeat("a", 70000) + strings.Repeat("b", 70000) + strings.Repeat("c", 60000), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			overflows := 0
			var tee bytes.Buffer
			c := newCapture(tt.limit, &tee, func() { overflows++ })
			go func() {
				for _, s := range tt.writes {
					w.WriteString(s)
				}
				w.Close()
			}()
			c.run(r)
			got, trunc := c.result()
			if string(got) != tt.want || trunc != tt.truncated || tee.String() != tt.want {
				t.Errorf("got %.50q (tee %.50q), truncated %v; want %.50q, %v", got, tee.String(), trunc, tt.want, tt.truncated)
			}
			if want := map[bool]int{true: 1, false: 0}[tt.truncated]; overflows != want {
				t.Errorf("overflow reported %d times, want %d", overflows, want)
			}
		})
	}
}

func TestCaptureRingKeepsTheLastBytesAndNeverOverflows(t *testing.T) {
	tests := []struct {
		name      string
		limit     int64
		writes    []string
		want      string
		truncated bool
	}{
		{"under", 10, []string{"abc"}, "abc", false},
		{"over in one write", 3, []string{"abcdef"}, "def", true},
		{"over across writes", 4, []string{"ab", "cd", "ef", "gh", "ij"}, "ghij", true},
		{"far over", 2, []string{"abcdefghijklmnop"}, "op", true},
		{"a cut character is dropped", 2, []string{"aaé", "b"}, "b", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			var tee bytes.Buffer
			c := newCapture(tt.limit, &tee, func() { t.Error("a ring reported an overflow") })
			c.ring, c.last.Limit = true, tt.limit
			go func() {
				for _, s := range tt.writes {
					w.WriteString(s)
				}
				w.Close()
			}()
			c.run(r)
			got, trunc := c.result()
			all := ""
			for _, s := range tt.writes {
				all += s
			}
			if string(got) != tt.want || trunc != tt.truncated || tee.String() != all {
				t.Errorf("got %q (tee %q), truncated %v; want %q (tee %q), %v", got, tee.String(), trunc, tt.want, all, tt.truncated)
			}
		})
	}
}
