package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/images"
	"github.com/sandboxd/sandboxd/queue"
	"github.com/sandboxd/sandboxd/runtime"
	"github.com/sandboxd/sandboxd/runtime/entry"
)

// apiError is an error with the API code and message the client sees.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func invalid(msg string) error { return &apiError{http.StatusBadRequest, api.CodeInvalidRequest, msg} }

// classify maps every error the handlers meet to one HTTP status and API
// code: the one place where error classes become API answers. Internal
// errors get a fixed message, so that no host path reaches a client; the
// log has the details.
func classify(err error) *apiError {
	var ae *apiError
	var tooLarge *http.MaxBytesError
	var limited *rateLimitedError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, errUnauthorized):
		// Never which check failed (signature, expiry, audience...): the
		// daemon's debug log has that.
		return &apiError{http.StatusUnauthorized, api.CodeUnauthorized, "a valid bearer token is required"}
	case errors.Is(err, errForbidden):
		return &apiError{http.StatusForbidden, api.CodeForbidden, "this caller is not allowed to use sandboxd"}
	case errors.As(err, &limited):
		return &apiError{http.StatusTooManyRequests, api.CodeRateLimited, limited.message}
	case errors.As(err, &tooLarge):
		return &apiError{http.StatusRequestEntityTooLarge, api.CodeRequestTooLarge, "request body exceeds the configured maximum"}
	case errors.Is(err, queue.ErrFull):
		return &apiError{http.StatusServiceUnavailable, api.CodeBusy, "all sandboxes are busy and the queue is full; retry later"}
	case errors.Is(err, images.ErrInUse):
		return &apiError{http.StatusConflict, api.CodeConflict, err.Error()}
	case errors.Is(err, images.ErrNotFound):
		return &apiError{http.StatusNotFound, api.CodeNotFound, err.Error()}
	case errors.Is(err, images.ErrInvalid), errors.Is(err, runtime.ErrInvalid), errors.Is(err, entry.ErrNotRunnable):
		return &apiError{http.StatusBadRequest, api.CodeInvalidRequest, err.Error()}
	case errors.Is(err, images.ErrUnavailable):
		return &apiError{http.StatusBadGateway, api.CodeUnavailable, err.Error()}
	default:
		return &apiError{http.StatusInternalServerError, api.CodeInternal, "internal error; see the daemon's log"}
	}
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	ae := classify(err)
	if ae.status >= 500 {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	switch ae.status {
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "1")
	case http.StatusTooManyRequests:
		var limited *rateLimitedError
		retry := time.Second
		if errors.As(err, &limited) {
			retry = limited.retryAfter
		}
		w.Header().Set("Retry-After", retryAfterSeconds(retry))
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="sandboxd"`)
	}
	s.noteError(r, ae)
	writeJSON(w, ae.status, api.ErrorBody{Error: api.ErrorDetail{Code: ae.code, Message: ae.message}})
}

// writeJSON encodes v fully before writing, so a client never gets half a
// response followed by an error.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"error":{"code":"internal_error","message":"encoding the response failed"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
