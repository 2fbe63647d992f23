package limits

import (
	"fmt"

	"github.com/sandboxd/sandboxd/api"
)

// FromFlags reads the limits whose command-line flag (Field.Flag) lookup
// reports as set: `sandboxd exec` and `sandboxd run` take the same flags.
func FromFlags(lookup func(flag string) (string, bool)) (Partial, error) {
	var p Partial
	for i, f := range fields() {
		text, ok := lookup(f.Flag)
		if !ok {
			continue
		}
		v, err := f.flagValue(text)
		if err == nil {
			err = f.parseConfig(&p.v, v)
		}
		if err == nil && !f.positive(&p.v) {
			err = fmt.Errorf("must be greater than zero")
		}
		if err != nil {
			return p, fmt.Errorf("--%s %q: %w", f.Flag, text, err)
		}
		p.set |= 1 << i
	}
	return p, nil
}

// FlagUsage is the help text of f's command-line flag.
func (f Field) FlagUsage() string {
	d := Defaults()
	return fmt.Sprintf("%s (%s; default %v)", f.API, f.Engine, f.value(&d))
}

// Settle lays p over base, the CPU time following the wall time when p
// sets only the latter.
func (p Partial) Settle(base Set) Set {
	s := p.Over(base)
	if p.Has("wall_time_ms") && !p.Has("cpu_time_ms") {
		s.CPUTime = s.WallTime
	}
	return s
}

// API returns the limits p sets in the API's form; nil when it sets none.
func (p Partial) API() *api.Limits {
	if p.Empty() {
		return nil
	}
	var a api.Limits
	for i, f := range fields() {
		if p.set&(1<<i) != 0 {
			f.toWire(&p.v, &a)
		}
	}
	return &a
}
