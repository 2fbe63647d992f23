// Package jsonbody reads a request's JSON body for the API and the
// compat endpoints alike: exactly one value, within a size bound, with
// errors of the errdefs classes.
package jsonbody

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/sandboxd/sandboxd/errdefs"
)

// Decode reads exactly one JSON value into v from r's body, at most
// maxBody bytes, refusing anything after it; strict also refuses unknown
// fields. A body over the bound is errdefs.ErrTooLarge, anything else
// errdefs.ErrInvalid.
func Decode(w http.ResponseWriter, r *http.Request, maxBody int64, strict bool, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	if strict {
		dec.DisallowUnknownFields()
	}
	err := dec.Decode(v)
	if err == nil {
		if _, err = dec.Token(); errors.Is(err, io.EOF) {
			return nil
		} else if err == nil {
			err = errors.New("data after the object")
		}
	}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return errdefs.New(errdefs.ErrTooLarge, "request body exceeds the configured maximum")
	}
	return errdefs.New(errdefs.ErrInvalid, "malformed JSON body: "+err.Error())
}
