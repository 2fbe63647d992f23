package images

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"syscall"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/sandboxd/sandboxd/errdefs"
)

// The store's errors, each of one errdefs class. Callers branch on them
// with errors.Is; every error the store returns that falls into one of
// them wraps it.
var (
	// ErrNotFound: no such image here, or the registry has no such
	// repository, tag or digest (HTTP 404, unknown_image).
	ErrNotFound = errdefs.New(errdefs.ErrNotFound, "image not found")
	// ErrInvalid: a bad reference or name, or an archive or layer that is
	// malformed, unsafe or over the size limits (HTTP 400).
	ErrInvalid = errdefs.New(errdefs.ErrInvalid, "invalid image")
	// ErrInUse: the image is acquired by a sandbox (HTTP 409).
	ErrInUse = errdefs.New(errdefs.ErrConflict, "image in use")
	// ErrUnavailable: the registry could not be reached or failed (HTTP
	// 502/503).
	ErrUnavailable = errdefs.New(errdefs.ErrUnavailable, "registry unavailable")
)

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

func notFoundf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrNotFound, fmt.Sprintf(format, args...))
}

// classed reports whether err already carries one of the classes (or a
// context error, which callers handle themselves).
func classed(err error) bool {
	for _, c := range []error{ErrNotFound, ErrInvalid, ErrInUse, ErrUnavailable, context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, c) {
			return true
		}
	}
	return false
}

// registryError puts an error from talking to a registry into a class: the
// registry's own "no such thing" answers become ErrNotFound, refused
// credentials too (a registry answers 401 for a repository that does not
// exist as well as for one that is private, so the two can't be told
// apart, as in Docker), everything on the wire ErrUnavailable.
func registryError(what string, err error) error {
	if err == nil || classed(err) {
		return err
	}
	var terr *transport.Error
	if errors.As(err, &terr) {
		switch {
		case terr.StatusCode == http.StatusNotFound:
			return fmt.Errorf("%w: %s: %w", ErrNotFound, what, err)
		case terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden:
			return fmt.Errorf("%w: %s: access denied (the repository does not exist or needs credentials): %w", ErrNotFound, what, err)
		}
		for _, d := range terr.Errors {
			switch d.Code {
			case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode, transport.BlobUnknownErrorCode:
				return fmt.Errorf("%w: %s: %w", ErrNotFound, what, err)
			case transport.NameInvalidErrorCode, transport.TagInvalidErrorCode:
				return fmt.Errorf("%w: %s: %w", ErrInvalid, what, err)
			}
		}
		return fmt.Errorf("%w: %s: %w", ErrUnavailable, what, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, what, err)
}

// streamError classes an error met while reading a layer stream: failures
// of the network or the disk are the registry's or ours, anything else
// (truncated gzip, bad tar header, digest mismatch) is a bad image.
func streamError(what string, err error) error {
	if err == nil || classed(err) {
		return err
	}
	var (
		nerr  net.Error
		uerr  *url.Error
		terr  *transport.Error
		errno syscall.Errno
	)
	switch {
	case errors.As(err, &terr), errors.As(err, &nerr), errors.As(err, &uerr):
		return registryError(what, err)
	case errors.As(err, &errno):
		// ENOSPC, EIO and the like: our side, unclassed.
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrInvalid, what, err)
}
