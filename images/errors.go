package images

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strings"
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
//
// Its text says what was being done and what happened in words of ours:
// the status, the registry's known error codes, the kind of network
// failure. Never the registry's own words (ggcr's errors quote error
// bodies, token replies and redirect URLs, which a hostile registry
// writes) nor the addresses dialed: the API shows this text to the
// caller. The whole error stays in the chain, for the log (pullDetail).
func registryError(what string, err error) error {
	if err == nil {
		return nil
	}
	var (
		re   *remoteError
		de   *DestinationError
		terr *transport.Error
	)
	switch {
	case errors.As(err, &re):
		return err
	case errors.As(err, &de):
		return &remoteError{class: ErrInvalid, msg: what + ": " + de.Error(), cause: err}
	case errors.Is(err, context.Canceled):
		return &remoteError{class: context.Canceled, msg: what + ": " + context.Canceled.Error(), cause: err}
	case errors.Is(err, context.DeadlineExceeded):
		return &remoteError{class: context.DeadlineExceeded, msg: what + ": " + context.DeadlineExceeded.Error(), cause: err}
	case classed(err):
		// Ours (a bad image config, say), worded here.
		return err
	case errors.As(err, &terr):
		class, why := statusClass(terr)
		return &remoteError{class: class, msg: what + ": " + why, cause: err}
	}
	return &remoteError{class: ErrUnavailable, msg: what + ": " + wireFailure(err), cause: err}
}

// statusClass classes a registry's error answer and words it from its
// status and the error codes of the distribution spec it carries.
func statusClass(terr *transport.Error) (error, string) {
	answered := fmt.Sprintf("registry answered %d %s", terr.StatusCode, http.StatusText(terr.StatusCode))
	var codes []string
	class := ErrUnavailable
	for _, d := range terr.Errors {
		if !knownCode(d.Code) {
			continue // the registry's own text
		}
		if !slices.Contains(codes, string(d.Code)) {
			codes = append(codes, string(d.Code))
		}
		switch d.Code {
		case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode, transport.BlobUnknownErrorCode:
			class = ErrNotFound
		case transport.NameInvalidErrorCode, transport.TagInvalidErrorCode:
			if class != ErrNotFound {
				class = ErrInvalid
			}
		}
	}
	if len(codes) > 0 {
		answered += " (" + strings.Join(codes, ", ") + ")"
	}
	switch terr.StatusCode {
	case http.StatusNotFound:
		return ErrNotFound, "not found: " + answered
	case http.StatusUnauthorized, http.StatusForbidden:
		return ErrNotFound, "access denied (the repository does not exist or needs credentials): " + answered
	}
	if class == ErrNotFound {
		return class, "not found: " + answered
	}
	return class, answered
}

func knownCode(c transport.ErrorCode) bool {
	switch c {
	case transport.BlobUnknownErrorCode, transport.BlobUploadInvalidErrorCode, transport.BlobUploadUnknownErrorCode,
		transport.DigestInvalidErrorCode, transport.ManifestBlobUnknownErrorCode, transport.ManifestInvalidErrorCode,
		transport.ManifestUnknownErrorCode, transport.ManifestUnverifiedErrorCode, transport.NameInvalidErrorCode,
		transport.NameUnknownErrorCode, transport.SizeInvalidErrorCode, transport.TagInvalidErrorCode,
		transport.UnauthorizedErrorCode, transport.DeniedErrorCode, transport.UnsupportedErrorCode,
		transport.TooManyRequestsErrorCode, transport.UnknownErrorCode:
		return true
	}
	return false
}

// wireFailure words an error that is not a registry's answer by its kind
// only: url.Error and net.OpError quote URLs (a redirect's) and the
// addresses dialed, TLS errors the names in a certificate, and ggcr's
// own errors may quote a body (a token server's reply).
func wireFailure(err error) string {
	var (
		dnsErr  *net.DNSError
		nerr    net.Error
		certErr *tls.CertificateVerificationError
		recErr  tls.RecordHeaderError
		uaErr   x509.UnknownAuthorityError
		hostErr x509.HostnameError
	)
	switch {
	case errors.Is(err, errPlainHTTP):
		return "refusing plain HTTP: only registries on localhost may go without TLS"
	case errors.As(err, &dnsErr):
		return "the host name could not be resolved"
	case errors.As(err, &certErr), errors.As(err, &uaErr), errors.As(err, &hostErr):
		return "the registry's TLS certificate is not trusted"
	case errors.As(err, &recErr), strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return "the registry does not speak TLS"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "the connection was closed early"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "the registry's network is unreachable"
	case errors.As(err, &nerr) && nerr.Timeout():
		return "timed out"
	case errors.As(err, &nerr):
		return "the connection failed"
	case strings.Contains(err.Error(), "no child with platform"):
		return "the image has no variant for linux/" + runtime.GOARCH
	}
	return "the registry's answer could not be used"
}

// remoteError is an error met talking to a registry: msg is what the API
// shows, cause the whole error, for the log.
type remoteError struct {
	class error
	msg   string
	cause error
}

func (e *remoteError) Error() string   { return e.msg }
func (e *remoteError) Unwrap() []error { return []error{e.class, e.cause} }

// pullDetail is err with everything the registry said, for the log, or ""
// when err has nothing more than its text.
func pullDetail(err error) string {
	var re *remoteError
	if errors.As(err, &re) {
		return re.cause.Error()
	}
	return ""
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
