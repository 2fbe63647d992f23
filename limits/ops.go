package limits

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/internal/units"
)

// ops are a field's operations in each of its representations: the Set
// (engine units), the API (ms, bytes, counts, cores), the config file
// (sizes and durations as text).
type ops interface {
	setDefault(*Set)
	setMaximum(*Set)
	positive(*Set) bool
	// belowMin returns why s's value is below the field's minimum, or "".
	belowMin(*Set) string
	above(s, max *Set) bool
	lower(s, max *Set)
	copy(dst, src *Set)
	value(*Set) any     // as errors show it
	wireValue(*Set) any // in the API's unit
	parseConfig(dst *Set, raw any) error
	flagValue(text string) (any, error)
	// fromWire reads the API's value into dst: present is false when the
	// API leaves it unset; tooLong when a duration is beyond maxMillis
	// (it is then clamped).
	fromWire(a *api.Limits, dst *Set) (present, positive, tooLong bool)
	toWire(src *Set, a *api.Limits)
}

// maxMillis bounds durations from the API before they are converted, so
// that no value overflows a time.Duration.
const maxMillis = int64(24 * time.Hour / time.Millisecond)

type number interface{ ~int64 | ~float64 }

// numField is a field held as T in a Set and as W in the API.
type numField[T number, W int64 | float64] struct {
	at       func(*Set) *T
	wire     func(*api.Limits) **W
	def, max T
	// lo is the smallest value the engine accepts; loMsg formats the
	// refusal of v (nil: no minimum beyond positive).
	lo    T
	loMsg func(v T) string
	fromW func(W) (T, bool) // false: clamped
	toW   func(T) W
	parse func(raw any) (T, error)
	flag  func(text string) (any, error)
}

func (f numField[T, W]) setDefault(s *Set)    { *f.at(s) = f.def }
func (f numField[T, W]) setMaximum(s *Set)    { *f.at(s) = f.max }
func (f numField[T, W]) positive(s *Set) bool { return *f.at(s) > 0 }
func (f numField[T, W]) belowMin(s *Set) string {
	if f.loMsg != nil && *f.at(s) < f.lo {
		return f.loMsg(*f.at(s))
	}
	return ""
}
func (f numField[T, W]) above(s, max *Set) bool { return *f.at(s) > *f.at(max) }
func (f numField[T, W]) lower(s, max *Set)      { *f.at(s) = min(*f.at(s), *f.at(max)) }
func (f numField[T, W]) copy(dst, src *Set)     { *f.at(dst) = *f.at(src) }
func (f numField[T, W]) value(s *Set) any       { return *f.at(s) }
func (f numField[T, W]) wireValue(s *Set) any   { return f.wireOf(*f.at(s)) }

func (f numField[T, W]) wireOf(v T) W {
	if f.toW == nil {
		return W(v)
	}
	return f.toW(v)
}

func (f numField[T, W]) parseConfig(dst *Set, raw any) error {
	v, err := f.parse(raw)
	if err != nil {
		return err
	}
	*f.at(dst) = v
	return nil
}

func (f numField[T, W]) flagValue(text string) (any, error) { return f.flag(text) }

func (f numField[T, W]) fromWire(a *api.Limits, dst *Set) (present, positive, tooLong bool) {
	p := *f.wire(a)
	if p == nil {
		return false, false, false
	}
	v, exact := T(*p), true
	if f.fromW != nil {
		v, exact = f.fromW(*p)
	}
	*f.at(dst) = v
	return true, *p > 0, !exact
}

func (f numField[T, W]) toWire(src *Set, a *api.Limits) {
	v := f.wireOf(*f.at(src))
	*f.wire(a) = &v
}

// duration is a time limit: milliseconds in the API, a Go duration ("10s")
// in the config.
func duration(at func(*Set) *time.Duration, wire func(*api.Limits) **int64, def, max time.Duration) ops {
	return numField[time.Duration, int64]{at: at, wire: wire, def: def, max: max,
		fromW: func(ms int64) (time.Duration, bool) {
			return time.Duration(min(ms, maxMillis)) * time.Millisecond, ms <= maxMillis
		},
		toW:   func(d time.Duration) int64 { return d.Milliseconds() },
		parse: fromText(units.ParseDuration, `a duration such as "10s"`),
		flag:  checkText(units.ParseDuration),
	}
}

// size is a byte count: bytes in the API, a size with a unit ("64MiB") in
// the config.
func size(at func(*Set) *int64, wire func(*api.Limits) **int64, def, max int64) numField[int64, int64] {
	return numField[int64, int64]{at: at, wire: wire, def: def, max: max,
		parse: fromText(units.ParseSize, `a size such as "64MiB"`),
		flag:  checkText(units.ParseSize),
	}
}

// count is a whole number, the same in the API and the config.
func count(at func(*Set) *int64, wire func(*api.Limits) **int64, def, max int64) numField[int64, int64] {
	return numField[int64, int64]{at: at, wire: wire, def: def, max: max,
		parse: func(raw any) (int64, error) {
			n, ok := raw.(int64)
			if !ok {
				return 0, fmt.Errorf("expected a whole number, not %v", raw)
			}
			return n, nil
		},
		flag: func(text string) (any, error) {
			n, err := strconv.ParseInt(text, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("expected a whole number")
			}
			return n, nil
		},
	}
}

// cores is a CPU quota in cores, the same in the API and the config.
func cores(at func(*Set) *float64, wire func(*api.Limits) **float64, def, max float64) numField[float64, float64] {
	return numField[float64, float64]{at: at, wire: wire, def: def, max: max,
		parse: func(raw any) (float64, error) {
			switch n := raw.(type) {
			case float64:
				if math.IsNaN(n) || math.IsInf(n, 0) {
					return 0, fmt.Errorf("expected a finite number of cores")
				}
				return n, nil
			case int64:
				return float64(n), nil
			}
			return 0, fmt.Errorf("expected a number of cores, not %v", raw)
		},
		flag: func(text string) (any, error) {
			n, err := strconv.ParseFloat(text, 64)
			if err != nil || math.IsNaN(n) || math.IsInf(n, 0) {
				return nil, fmt.Errorf("expected a number of cores")
			}
			return n, nil
		},
	}
}

// atLeast gives f a minimum: the engine refuses less (msg formats why).
func atLeast[T number, W int64 | float64](f numField[T, W], lo T, msg func(v T) string) numField[T, W] {
	f.lo, f.loMsg = lo, msg
	return f
}

// fromText reads a config value written as text with parse; what says
// what was expected.
func fromText[T any](parse func(string) (T, error), what string) func(any) (T, error) {
	return func(raw any) (T, error) {
		s, ok := raw.(string)
		if !ok {
			var zero T
			return zero, fmt.Errorf("expected %s, not %v", what, raw)
		}
		return parse(s)
	}
}

// checkText checks a flag's text with parse and keeps it as text, as the
// config file holds it.
func checkText[T any](parse func(string) (T, error)) func(string) (any, error) {
	return func(text string) (any, error) {
		_, err := parse(text)
		return text, err
	}
}
