package limits

import (
	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/errdefs"
)

// FromAPI reads a request's limits: every field it sets must be positive,
// and a time no longer than a day (so that no conversion overflows; the
// configured maximum is checked by Resolve). prefix names the object in
// errors ("limits", "compile_limits"). A nil a sets nothing.
func FromAPI(a *api.Limits, prefix string) (Partial, error) {
	var p Partial
	if a == nil {
		return p, nil
	}
	for i, f := range fields() {
		present, positive, tooLong := f.fromWire(a, &p.v)
		switch {
		case !present:
			continue
		case !positive:
			return p, errdefs.Invalidf("%s.%s must be greater than zero", prefix, f.API)
		case tooLong:
			return p, errdefs.Invalidf("%s.%s is above the configured maximum", prefix, f.API)
		}
		p.set |= 1 << i
	}
	return p, nil
}

// CapsFromAPI reads a token's caps (its sandboxd_limits claim). Unlike a
// request, absurd values are clamped, not refused: a cap only lowers.
func CapsFromAPI(a *api.Limits) Partial {
	var p Partial
	if a == nil {
		return p
	}
	for i, f := range fields() {
		if present, _, _ := f.fromWire(a, &p.v); present {
			p.set |= 1 << i
		}
	}
	return p
}

// NotPositive returns the API name of the first limit a sets to zero or
// less, or "" (a token's caps must be positive; unlike a request's, they
// may be as large as they like).
func NotPositive(a *api.Limits) string {
	if a == nil {
		return ""
	}
	var scratch Set
	for _, f := range fields() {
		if present, positive, _ := f.fromWire(a, &scratch); present && !positive {
			return f.API
		}
	}
	return ""
}

// ToAPI returns s in the API's names and units.
func ToAPI(s Set) api.Limits {
	var a api.Limits
	for _, f := range fields() {
		f.toWire(&s, &a)
	}
	return a
}
