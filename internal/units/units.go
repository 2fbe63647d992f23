// Package units parses the human-written sizes and durations that sandboxd
// accepts on its command line and in its configuration.
package units

import (
	"fmt"
	"strings"
	"time"

	goUnits "github.com/docker/go-units"

	"github.com/sandboxd/sandboxd/errdefs"
)

// ErrNotPositive is returned for a value that parses but is zero or negative.
var ErrNotPositive = errdefs.New(errdefs.ErrInvalid, "must be greater than zero")

// ParseSize parses a byte size such as "64MiB", "1GiB", "512KiB" or "4096".
// Units are binary (KiB = 1024 bytes); "KB"/"MB" are read the same way, as
// Docker does, because users write both and mean the same thing.
func ParseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("size %q: %w", s, ErrNotPositive)
	}
	n, err := goUnits.RAMInBytes(s)
	if err != nil {
		return 0, fmt.Errorf("size %q: expected a number with an optional unit (KiB, MiB, GiB)", s)
	}
	if n <= 0 {
		return 0, fmt.Errorf("size %q: %w", s, ErrNotPositive)
	}
	return n, nil
}

// ParseDuration parses a Go duration ("10s", "1500ms") that must be positive.
func ParseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("duration %q: expected a Go duration such as 10s or 500ms", s)
	}
	if d <= 0 {
		return 0, fmt.Errorf("duration %q: %w", s, ErrNotPositive)
	}
	return d, nil
}
