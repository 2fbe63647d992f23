// Package errdefs is sandboxd's one set of error classes. Every package
// puts its errors into these classes (its sentinels wrap one of them), and
// callers branch with errors.Is on the class, never on another package's
// sentinel. The API maps classes to HTTP statuses and codes in one place
// (server/errors.go); the CLI maps them to exit codes.
package errdefs

import (
	"errors"
	"fmt"
)

// The classes.
var (
	// ErrNotFound: the named thing does not exist (an image, a language).
	ErrNotFound = errors.New("not found")
	// ErrInvalid: the caller's input is wrong (a bad limit, a bad name).
	ErrInvalid = errors.New("invalid")
	// ErrConflict: the thing exists but is in a state that forbids the
	// operation (an image in use).
	ErrConflict = errors.New("conflict")
	// ErrExhausted: a shared capacity is used up for now (every slot busy
	// and the queue full); retrying later may succeed.
	ErrExhausted = errors.New("exhausted")
	// ErrTooLarge: the input is over a configured size.
	ErrTooLarge = errors.New("too large")
	// ErrNoSpace: a sandbox's storage is full (its /work or /tmp tmpfs).
	ErrNoSpace = errors.New("insufficient storage")
	// ErrUnavailable: something sandboxd depends on cannot be reached or
	// failed (a registry).
	ErrUnavailable = errors.New("unavailable")
	// ErrUnauthorized: the caller did not prove who it is.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrForbidden: the caller is known and not allowed.
	ErrForbidden = errors.New("forbidden")
	// ErrInternal: sandboxd itself failed; the details are for the log.
	ErrInternal = errors.New("internal")
)

// classes lists every class, in the order Class tries them.
var classes = [...]error{ErrNotFound, ErrInvalid, ErrConflict, ErrExhausted, ErrTooLarge,
	ErrNoSpace, ErrUnavailable, ErrUnauthorized, ErrForbidden, ErrInternal}

// Class returns the class err belongs to, or ErrInternal when it belongs
// to none: an unclassified error is a sandboxd bug or a host failure.
func Class(err error) error {
	for _, c := range classes {
		if errors.Is(err, c) {
			return c
		}
	}
	return ErrInternal
}

// classed is an error of a class whose text is its message alone: the
// class is for branching, the message for people.
type classed struct {
	class error
	msg   string
}

func (e *classed) Error() string { return e.msg }
func (e *classed) Unwrap() error { return e.class }

// New returns an error of class with the message msg. Packages declare
// their sentinels with it: var ErrX = errdefs.New(errdefs.ErrNotFound, "...").
func New(class error, msg string) error { return &classed{class: class, msg: msg} }

// Newf formats the message.
func Newf(class error, format string, args ...any) error {
	return &classed{class: class, msg: fmt.Sprintf(format, args...)}
}

// Invalidf is Newf(ErrInvalid, ...), the most common.
func Invalidf(format string, args ...any) error { return Newf(ErrInvalid, format, args...) }

// NotFoundf is Newf(ErrNotFound, ...).
func NotFoundf(format string, args ...any) error { return Newf(ErrNotFound, format, args...) }

// Is reports whether err is of class.
func Is(err, class error) bool { return errors.Is(err, class) }
