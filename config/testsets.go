package config

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/sandboxd/sandboxd/internal/units"
)

// Testsets is the [testsets] section: stored test sets (POST
// /v1/testsets) and what they may hold.
type Testsets struct {
	// Dir holds the sets ("": <state_dir>/testsets). They survive
	// restarts.
	Dir string `toml:"dir"`
	// MaxBytes bounds one set's files, unpacked (and the archive as
	// sent, with its headers); MaxTests its tests (at most max_tests, as
	// a request runs every test of its set).
	MaxBytes string `toml:"max_bytes"`
	MaxTests int    `toml:"max_tests"`
	// MaxOwnerBytes bounds one caller's sets together, MaxTotalBytes all
	// the daemon holds.
	MaxOwnerBytes string `toml:"max_owner_bytes"`
	MaxTotalBytes string `toml:"max_total_bytes"`
}

// TestsetsResolved is [testsets] checked and converted.
type TestsetsResolved struct {
	Dir                               string
	MaxBytes, MaxOwnerBytes, MaxTotal int64
	MaxTests                          int
}

func defaultTestsets() Testsets {
	return Testsets{MaxBytes: "256MiB", MaxTests: 1000, MaxOwnerBytes: "1GiB", MaxTotalBytes: "8GiB"}
}

// resolveTestsets checks [testsets].
func (c Config) resolveTestsets(r *Resolved) []error {
	t := c.Testsets
	out := TestsetsResolved{Dir: t.Dir, MaxTests: t.MaxTests}
	if out.Dir == "" {
		out.Dir = filepath.Join(c.StateDir, "testsets")
	}
	var errs []error
	for _, s := range []struct {
		key, text string
		dst       *int64
	}{{"max_bytes", t.MaxBytes, &out.MaxBytes}, {"max_owner_bytes", t.MaxOwnerBytes, &out.MaxOwnerBytes},
		{"max_total_bytes", t.MaxTotalBytes, &out.MaxTotal}} {
		n, err := units.ParseSize(s.text)
		if err != nil || n <= 0 {
			errs = append(errs, fmt.Errorf("[testsets] %s %q: must be a positive size", s.key, s.text))
		}
		*s.dst = n
	}
	if t.MaxTests <= 0 || t.MaxTests > c.MaxTests {
		errs = append(errs, fmt.Errorf("[testsets] max_tests %d: must be between 1 and max_tests (%d): a request runs every test of its set", t.MaxTests, c.MaxTests))
	}
	if len(errs) == 0 && (out.MaxBytes > out.MaxOwnerBytes || out.MaxOwnerBytes > out.MaxTotal) {
		errs = append(errs, errors.New("[testsets] max_bytes <= max_owner_bytes <= max_total_bytes is required"))
	}
	r.Testsets = out
	return errs
}
