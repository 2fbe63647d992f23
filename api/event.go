package api

import "encoding/json"

// Event is one event of a streaming answer ("stream": true) or of an
// interactive run over WebSocket, as a client reads it (docs/api.md,
// "Streaming"). A result event carries the fields of the plain answer
// (ExecuteResponse or LanguageResponse): decode Raw into the one asked for.
type Event struct {
	// Type is "stdout", "stderr", "stage", "result" or "error".
	Type string `json:"type"`
	// Data and Encoding: an output event's bytes, UTF-8 text unless
	// Encoding is "base64".
	Data     string `json:"data,omitempty"`
	Encoding string `json:"encoding,omitempty"`
	// Stage and Index: a language request's stage event.
	Stage string `json:"stage,omitempty"`
	Index int    `json:"index,omitempty"`
	// Error: an error event's cause.
	Error *ErrorDetail `json:"error,omitempty"`
	// Raw is the whole event as it was sent.
	Raw json.RawMessage `json:"-"`
}
