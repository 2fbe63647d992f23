package units

import (
	"strconv"
	"testing"
)

// FuzzParseSize: an accepted size is positive, and its plain byte count
// parses back to itself.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"64MiB", "1GiB", "512KiB", "4096", "0", "-1", "1e3", "9223372036854775807", "8EiB", "16eb", " 1 MB ", "1.5GiB", "0.0000001KiB", "NaN", "Inf", "1kb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err != nil {
			return
		}
		if n <= 0 {
			t.Fatalf("ParseSize(%q) = %d, not positive", s, n)
		}
		back, err := ParseSize(strconv.FormatInt(n, 10))
		if err != nil || back != n {
			t.Fatalf("ParseSize(%q) = %d, but %d parses as %d, %v", s, n, n, back, err)
		}
	})
}

// FuzzParseDuration: an accepted duration is positive and round-trips
// through its String form.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"10s", "1500ms", "0", "-1s", "1h2m3.5s", "9223372036854775807ns", "2562047h", "1e3s", ".5s", " 1s "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			return
		}
		if d <= 0 {
			t.Fatalf("ParseDuration(%q) = %v, not positive", s, d)
		}
		back, err := ParseDuration(d.String())
		if err != nil || back != d {
			t.Fatalf("ParseDuration(%q) = %v, but %q parses as %v, %v", s, d, d.String(), back, err)
		}
	})
}
