// Package compat answers the Piston v2 and Judge0 CE APIs (docs/compat.md)
// by translating their requests into language-mode requests
// (api.ExecuteRequest) and the answers back: a thin layer over the
// language service, not a second engine. The server mounts its handlers
// behind the same access control, admission, audit and metrics as /v1,
// and hands each request a Backend to run and fail through; this package
// never maps error classes to statuses itself (server/errors.go does).
package compat

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"path"
	"strings"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/errdefs"
	"github.com/sandboxd/sandboxd/internal/jsonbody"
	"github.com/sandboxd/sandboxd/languages"
)

// Run runs one admitted language-mode request. It must be called exactly
// once: it counts the admission out and writes the request's audit line.
type Run func(ctx context.Context, req *api.ExecuteRequest) (*api.LanguageResponse, error)

// Backend is what the protocols need of the daemon; the server implements
// it.
type Backend interface {
	// Languages lists the catalog's languages with their versions.
	Languages(ctx context.Context) []api.LanguageInfo
	// Admit admits one execution by the caller of r (its rate and
	// concurrency limits), or refuses it.
	Admit(r *http.Request) (Run, error)
	// Caller names the caller of r, who owns the submissions it makes.
	Caller(r *http.Request) string
	// Fail answers err with the status and headers /v1 would give it;
	// shape turns that status and the message into the protocol's own
	// status and body.
	Fail(w http.ResponseWriter, r *http.Request, err error, shape func(status int, message string) (int, any))
}

// Options configure the handlers.
type Options struct {
	// Catalog gives each language's main file name (a Piston file or a
	// Judge0 source has none, or not the one the catalog's commands use).
	Catalog *languages.Catalog
	// MaxBody bounds a request's body.
	MaxBody int64
	// Results bound the Judge0 submissions kept for their tokens.
	Results StoreLimits
}

// decodeBody reads one JSON value of type T, ignoring unknown fields (the
// clients of both APIs send fields that sandboxd has no use for, and the
// originals ignore unknown ones too).
func decodeBody[T any](w http.ResponseWriter, r *http.Request, maxBody int64) (*T, error) {
	var v T
	if err := jsonbody.Decode(w, r, maxBody, false, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// writeJSON answers v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"message":"encoding the response failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// mainFile is the catalog's main file name of language, "" when the
// catalog does not know it (the language service then refuses the
// request with its own message).
func (o *Options) mainFile(language string) string {
	if o.Catalog == nil {
		return ""
	}
	l, err := o.Catalog.Lookup(language)
	if err != nil {
		return ""
	}
	return l.Main
}

// sourceName names the i-th unnamed file of a request: the main file's
// name first, then names with its extension, so that the catalog's
// compile commands (which pick sources by extension) take them.
func sourceName(main string, i int) string {
	if i == 0 {
		return main
	}
	return fmt.Sprintf("file%d%s", i, path.Ext(main))
}

// splitArgs splits a command line as a shell would for plain words and
// quotes ('...', "...", backslash escapes); it expands nothing.
func splitArgs(s string) ([]string, error) {
	var args []string
	var cur strings.Builder
	inWord, quote, escaped := false, rune(0), false
	for _, c := range s {
		switch {
		case escaped:
			cur.WriteRune(c)
			escaped = false
		case c == '\\' && quote != '\'':
			escaped, inWord = true, true
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(c)
		case c == '\'' || c == '"':
			quote, inWord = c, true
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				args = append(args, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(c)
			inWord = true
		}
	}
	if quote != 0 || escaped {
		return nil, errdefs.Invalidf("command_line_arguments: an unterminated quote or escape")
	}
	if inWord {
		args = append(args, cur.String())
	}
	return args, nil
}

// decodedOutput is a result's stdout or stderr as bytes (the result
// carries output that is not UTF-8 as base64).
func decodedOutput(text, encoding string) string {
	if encoding == "base64" {
		if b, err := base64.StdEncoding.DecodeString(text); err == nil {
			return string(b)
		}
	}
	return text
}

// scaled is a limit for api.Limits in its unit (v times scale), nil when v does not
// set one (absent, zero or negative: the original APIs' "no value").
func scaled(v *float64, scale float64) *int64 {
	if v == nil || *v <= 0 {
		return nil
	}
	ms := int64(*v * scale)
	return &ms
}
