package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/errdefs"
	"github.com/sandboxd/sandboxd/execution"
	"github.com/sandboxd/sandboxd/languages"
	"github.com/sandboxd/sandboxd/session"
	"github.com/sandboxd/sandboxd/testsets"
)

// apiError is what the client sees of an error.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func invalid(msg string) error { return errdefs.New(errdefs.ErrInvalid, msg) }

// wire is each error class's HTTP status and API code. fixed, when set,
// replaces the error's text: internal errors must not show host paths,
// and auth refusals must not say which check failed (the log has that).
var wire = []struct {
	class  error
	status int
	code   string
	fixed  string
}{
	{errdefs.ErrInvalid, http.StatusBadRequest, api.CodeInvalidRequest, ""},
	{errdefs.ErrNotFound, http.StatusNotFound, api.CodeNotFound, ""},
	{errdefs.ErrConflict, http.StatusConflict, api.CodeConflict, ""},
	{errdefs.ErrTooLarge, http.StatusRequestEntityTooLarge, api.CodeRequestTooLarge, ""},
	{errdefs.ErrNoSpace, http.StatusInsufficientStorage, api.CodeInsufficientStorage, ""},
	{errdefs.ErrUnauthorized, http.StatusUnauthorized, api.CodeUnauthorized, "a valid bearer token is required"},
	{errdefs.ErrForbidden, http.StatusForbidden, api.CodeForbidden, "this caller is not allowed to use sandboxd"},
	{errdefs.ErrExhausted, http.StatusServiceUnavailable, api.CodeBusy, ""},
	{errdefs.ErrUnavailable, http.StatusBadGateway, api.CodeUnavailable, ""},
	{errdefs.ErrInternal, http.StatusInternalServerError, api.CodeInternal, "internal error; see the daemon's log"},
}

// classify maps every error the handlers meet to one HTTP status and API
// code: the one place where error classes become API answers. Two
// refinements name what was not found in an execution (unknown_image,
// unknown_language, unknown_sandbox), and a user's rate limit or session
// quota is a 429, not a busy 503.
func classify(err error) *apiError {
	var limited *rateLimitedError
	var quota *session.QuotaError
	var unknownImage *execution.UnknownImageError
	switch {
	case errors.As(err, &limited):
		return &apiError{http.StatusTooManyRequests, api.CodeRateLimited, limited.message}
	case errors.As(err, &quota):
		return &apiError{http.StatusTooManyRequests, api.CodeRateLimited, quota.Message}
	case errors.Is(err, session.ErrUnknown):
		return &apiError{http.StatusNotFound, api.CodeUnknownSandbox, "no sandbox with this id (it never existed, has ended, or is another caller's)"}
	case errors.Is(err, session.ErrUnknownExec):
		return &apiError{http.StatusNotFound, api.CodeUnknownExec, "this sandbox has no exec with this id (it never existed, or ended long enough ago to be forgotten)"}
	case errors.Is(err, testsets.ErrUnknown):
		return &apiError{http.StatusNotFound, api.CodeUnknownTestset, testsets.ErrUnknown.Error()}
	case errors.As(err, &unknownImage):
		return &apiError{http.StatusNotFound, api.CodeUnknownImage, unknownImage.Error()}
	case errors.Is(err, languages.ErrUnknown):
		return &apiError{http.StatusNotFound, api.CodeUnknownLanguage, unwrapped(err, languages.ErrUnknown)}
	}
	class := errdefs.Class(err)
	for _, w := range wire {
		if w.class == class {
			msg := w.fixed
			if msg == "" {
				msg = err.Error()
			}
			return &apiError{w.status, w.code, msg}
		}
	}
	panic("errdefs.Class returned a class with no wire mapping") // a bug: every class is in wire
}

// unwrapped drops sentinel's text from err's when err is "sentinel: why",
// so that the client reads why.
func unwrapped(err, sentinel error) string {
	msg, prefix := err.Error(), sentinel.Error()+": "
	if len(msg) > len(prefix) && msg[:len(prefix)] == prefix {
		return msg[len(prefix):]
	}
	return msg
}

func apiErrorBody(ae *apiError) api.ErrorBody {
	return api.ErrorBody{Error: api.ErrorDetail{Code: ae.code, Message: ae.message}}
}

// writeError answers err, with the headers its status calls for, and
// records it for the metrics and the request's audit line (rec may be nil).
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, rec *execRecord, err error) {
	ae := classify(err)
	if ae.status >= 500 {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	errorHeaders(w, err, ae.status)
	s.noteError(rec, ae)
	writeJSON(w, ae.status, apiErrorBody(ae))
}

// errorHeaders sets the headers an error's status calls for.
func errorHeaders(w http.ResponseWriter, err error, status int) {
	switch status {
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "1")
	case http.StatusTooManyRequests:
		var limited *rateLimitedError
		var quota *session.QuotaError
		retry := time.Second
		if errors.As(err, &limited) {
			retry = limited.retryAfter
		} else if errors.As(err, &quota) {
			retry = quota.RetryAfter
		}
		w.Header().Set("Retry-After", retryAfterSeconds(retry))
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="sandboxd"`)
	}
}

// writeJSON encodes v fully before writing, so a client never gets half a
// response followed by an error.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body, _ = json.Marshal(apiErrorBody(classify(errdefs.New(errdefs.ErrInternal, "encoding the response failed"))))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
