// Package limits is sandboxd's one model of run limits. The table in
// fields.go lists every limit once: its API name and unit, its config key
// and flags, its default and maximum, its audit name and how the engine
// enforces it. The API's resolution, the config file, the serve and exec
// flags, the audit line and the engine's checks all walk that table.
//
// A Set is a complete set of limits (what the engine enforces); a Partial
// is some of them (a request, a token's caps, a catalog entry, a config
// section), laid over a Set.
package limits

import (
	"fmt"
	"strings"

	"github.com/sandboxd/sandboxd/errdefs"
)

// MinOpenFiles is the lowest open_files a run may have: below it, the
// dynamic loader and language runtimes fail before user code runs.
const MinOpenFiles = 16

// Defaults returns every field's default: the production settings of the
// design sandboxd replaces (128 MiB, half a core, 10 s, a 64 MiB /tmp).
func Defaults() Set {
	var s Set
	for _, f := range fields() {
		f.setDefault(&s)
	}
	return s
}

// Maximums returns every field's built-in maximum (the config's
// [maximums] section refines them).
func Maximums() Set {
	var s Set
	for _, f := range fields() {
		f.setMaximum(&s)
	}
	return s
}

// Validate checks that every limit is set and sane.
func (s Set) Validate() error {
	for _, f := range fields() {
		if !f.positive(&s) {
			return errdefs.Invalidf("%s must be greater than zero", f.Config)
		}
	}
	for _, f := range fields() {
		if why := f.belowMin(&s); why != "" {
			return errdefs.Invalidf("%s", why)
		}
	}
	return nil
}

// Within returns an error naming the first limit of s above max's, or nil.
func (s Set) Within(max Set) error {
	for _, f := range fields() {
		if f.above(&s, &max) {
			return errdefs.Invalidf("%s %v is above the maximum %v", f.Config, f.value(&s), f.value(&max))
		}
	}
	return nil
}

// Capped returns s with every limit above max's lowered to it.
func (s Set) Capped(max Set) Set {
	for _, f := range fields() {
		f.lower(&s, &max)
	}
	return s
}

// Audit returns s in the API's names and units, for the audit line.
func (s Set) Audit() map[string]any {
	out := make(map[string]any, len(fields()))
	for _, f := range fields() {
		out[f.API] = f.wireValue(&s)
	}
	return out
}

// Partial is some limits: those its source set. The zero Partial sets
// none.
type Partial struct {
	v   Set
	set uint32 // bit i: fields()[i] is set
}

// Has reports whether p sets the field with API name api.
func (p Partial) Has(api string) bool {
	for i, f := range fields() {
		if f.API == api {
			return p.set&(1<<i) != 0
		}
	}
	return false
}

// Empty reports whether p sets nothing.
func (p Partial) Empty() bool { return p.set == 0 }

// Over returns base with every field p sets replaced.
func (p Partial) Over(base Set) Set {
	for i, f := range fields() {
		if p.set&(1<<i) != 0 {
			f.copy(&base, &p.v)
		}
	}
	return base
}

// Then returns p with every field q sets replaced by q's value.
func (p Partial) Then(q Partial) Partial {
	p.v = q.Over(p.v)
	p.set |= q.set
	return p
}

// AboveCap returns the API name of the first field that p and caps both
// set with p's value above the cap, or "".
func (p Partial) AboveCap(caps Partial) string {
	for i, f := range fields() {
		if p.set&caps.set&(1<<i) != 0 && f.above(&p.v, &caps.v) {
			return f.API
		}
	}
	return ""
}

// Resolve lays p over base, lets the CPU time follow the wall time when p
// sets only the latter (as `sandboxd exec` does), and checks the result
// against max. The error is of class errdefs.ErrInvalid and names the
// field as the API does, under prefix ("limits", "compile_limits").
func Resolve(p Partial, base, max Set, prefix string) (Set, error) {
	s := p.Settle(base)
	if p.Has("wall_time_ms") && !p.Has("cpu_time_ms") {
		s.CPUTime = min(s.CPUTime, max.CPUTime)
	}
	if err := s.Within(max); err != nil {
		return s, errdefs.Invalidf("%s: %v", prefix, err)
	}
	if err := s.Validate(); err != nil {
		return s, errdefs.Invalidf("%s: %v", prefix, err)
	}
	return s, nil
}

// FromConfig reads a config section ([defaults], [maximums], a catalog
// entry's limits): keys are the table's config keys, sizes are strings
// with units, durations Go durations, counts and cores numbers. what names
// the section in errors.
func FromConfig(values map[string]any, what string) (Partial, error) {
	var p Partial
	if what != "" {
		what += ": "
	}
	for key, raw := range values {
		i, f, ok := byConfig(key)
		if !ok {
			return p, errdefs.Invalidf("%sunknown limit %q (known: %s)", what, key, strings.Join(configKeys(), ", "))
		}
		if err := f.parseConfig(&p.v, raw); err != nil {
			return p, errdefs.Invalidf("%s%s: %v", what, key, err)
		}
		p.set |= 1 << i
	}
	return p, nil
}

// ParseFlag converts a flag's text for config key into the value a config
// file would hold, so that flags and the file go through one parser.
func ParseFlag(key, text string) (any, error) {
	_, f, ok := byConfig(key)
	if !ok {
		return nil, fmt.Errorf("unknown limit %q", key)
	}
	return f.flagValue(text)
}

func byConfig(key string) (int, Field, bool) {
	for i, f := range fields() {
		if f.Config == key {
			return i, f, true
		}
	}
	return 0, Field{}, false
}

func configKeys() []string {
	var out []string
	for _, f := range fields() {
		out = append(out, f.Config)
	}
	return out
}
