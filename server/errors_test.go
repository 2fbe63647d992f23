package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/auth"
	"github.com/sandboxd/sandboxd/errdefs"
	"github.com/sandboxd/sandboxd/execution"
	"github.com/sandboxd/sandboxd/images"
	"github.com/sandboxd/sandboxd/languages"
	"github.com/sandboxd/sandboxd/queue"
	"github.com/sandboxd/sandboxd/rootfs"
	"github.com/sandboxd/sandboxd/runtime"
	"github.com/sandboxd/sandboxd/runtime/entry"
	"github.com/sandboxd/sandboxd/session"
)

// Every error class, and every package's sentinel, maps to one status and
// code as docs/api.md states; internal errors never show their text.
func TestClassify(t *testing.T) {
	cases := []struct {
		name    string
		err     error
		status  int
		code    string
		message string // a substring; "" skips
	}{
		{"invalid", invalid("bad"), 400, api.CodeInvalidRequest, "bad"},
		{"invalid image ref", fmt.Errorf("pulling: %w: bad reference", images.ErrInvalid), 400, api.CodeInvalidRequest, "bad reference"},
		{"unknown image on the images endpoints", fmt.Errorf("%w: x", images.ErrNotFound), 404, api.CodeNotFound, "image not found: x"},
		{"unknown image in execute", fmt.Errorf("compile: %w", &execution.UnknownImageError{Name: "nope"}), 404, api.CodeUnknownImage, `image "nope" is not in the store`},
		{"unknown language", fmt.Errorf("%w %q; available: c", languages.ErrUnknown, "x"), 404, api.CodeUnknownLanguage, `unknown language "x"`},
		{"language without its image", fmt.Errorf("%w: its image is not available", languages.ErrUnknown), 404, api.CodeUnknownLanguage, "its image is not available"},
		{"image in use", fmt.Errorf("%w: by 2 sandboxes", images.ErrInUse), 409, api.CodeConflict, "in use"},
		{"sandbox used twice", runtime.ErrUsed, 409, api.CodeConflict, "already used"},
		{"too large", errdefs.New(errdefs.ErrTooLarge, "file too big"), 413, api.CodeRequestTooLarge, "file too big"},
		{"unauthorized", errUnauthorized, 401, api.CodeUnauthorized, "a valid bearer token is required"},
		{"bad token", fmt.Errorf("%w: expired", auth.ErrInvalidToken), 401, api.CodeUnauthorized, "a valid bearer token is required"},
		{"forbidden", errForbidden, 403, api.CodeForbidden, "not allowed"},
		{"rate limited", &rateLimitedError{message: "slow down"}, 429, api.CodeRateLimited, "slow down"},
		{"busy", queue.ErrFull, 503, api.CodeBusy, "busy"},
		{"registry down", fmt.Errorf("%w: dial tcp", images.ErrUnavailable), 502, api.CodeUnavailable, "dial tcp"},
		{"not runnable", fmt.Errorf("run: %w: no such file", entry.ErrNotRunnable), 400, api.CodeInvalidRequest, "could not be started"},
		{"bad file name", fmt.Errorf("%w: ..", rootfs.ErrBadFileName), 400, api.CodeInvalidRequest, ""},
		{"bad limit", runtime.DefaultLimits().Within(runtime.Limits{}), 400, api.CodeInvalidRequest, "above the maximum"},
		{"unclassed", errors.New("open /var/lib/secret: permission denied"), 500, api.CodeInternal, "internal error; see the daemon's log"},
		{"canceled", context.Canceled, 500, api.CodeInternal, ""},
		{"unknown sandbox", fmt.Errorf("sandbox x ended during the exec: %w", session.ErrUnknown), 404, api.CodeUnknownSandbox, "no sandbox with this id"},
		{"session quota", fmt.Errorf("create: %w", &session.QuotaError{Message: "max_sessions_per_user"}), 429, api.CodeRateLimited, "max_sessions_per_user"},
		{"shutting down", session.ErrClosed, 503, api.CodeBusy, "shutting down"},
		{"sandbox full", fmt.Errorf("/work/a: %w", rootfs.ErrNoSpace), 507, api.CodeInsufficientStorage, "no space left"},
		{"not a regular file", fmt.Errorf("/work/fifo: %w", rootfs.ErrNotRegular), 400, api.CodeInvalidRequest, "not a regular file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ae := classify(c.err)
			if ae.status != c.status || ae.code != c.code || !strings.Contains(ae.message, c.message) {
				t.Fatalf("%v -> %d %s %q, want %d %s with %q", c.err, ae.status, ae.code, ae.message, c.status, c.code, c.message)
			}
			if c.status == 500 && strings.Contains(ae.message, "/var/lib") {
				t.Fatalf("an internal error shows its text: %q", ae.message)
			}
		})
	}
}

// Every class has a wire mapping, and no two share a code.
func TestEveryClassIsMapped(t *testing.T) {
	codes := map[string]bool{}
	for _, class := range []error{errdefs.ErrNotFound, errdefs.ErrInvalid, errdefs.ErrConflict, errdefs.ErrExhausted,
		errdefs.ErrTooLarge, errdefs.ErrNoSpace, errdefs.ErrUnavailable, errdefs.ErrUnauthorized, errdefs.ErrForbidden, errdefs.ErrInternal} {
		ae := classify(errdefs.New(class, "x"))
		if codes[ae.code] {
			t.Errorf("%v: code %s used twice", class, ae.code)
		}
		codes[ae.code] = true
	}
}

// A body over max_body is a 413 from decode, malformed JSON a 400.
func TestDecodeErrors(t *testing.T) {
	s := &Server{Options: Options{MaxBody: 16}}
	for body, want := range map[string]int{
		`{"image":"busybox","cmd":["a-long-command"]}`: http.StatusRequestEntityTooLarge,
		`{"image":`:     http.StatusBadRequest,
		`{} {}`:         http.StatusBadRequest,
		`{"bogus":1}`:   http.StatusBadRequest,
		`{"image":"b"}`: 0,
	} {
		r := httptest.NewRequest(http.MethodPost, "/v1/execute", strings.NewReader(body))
		_, err := decode[api.ExecuteRequest](s, httptest.NewRecorder(), r)
		switch {
		case want == 0 && err != nil:
			t.Errorf("%s: %v", body, err)
		case want != 0 && (err == nil || classify(err).status != want):
			t.Errorf("%s: %v, want %d", body, err, want)
		}
	}
}
