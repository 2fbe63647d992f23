package api

import (
	"encoding/base64"
	"unicode/utf8"
)

// EncodeOutput returns bytes a program wrote as a JSON-safe string and its
// encoding: UTF-8 text is kept as it is (encoding ""), anything else is
// base64 (encoding "base64"), so that no byte is altered on the wire.
func EncodeOutput(data string) (text, encoding string) {
	if utf8.ValidString(data) {
		return data, ""
	}
	return base64.StdEncoding.EncodeToString([]byte(data)), "base64"
}
