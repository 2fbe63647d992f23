package limits

import (
	"fmt"
	"strings"
)

// OpenAPIStart and OpenAPIEnd enclose the Limits schema's properties in
// api/openapi.yaml, which OpenAPIProperties renders from the table.
const (
	OpenAPIStart = "    Limits:\n      type: object\n      additionalProperties: false\n      properties:\n"
	OpenAPIEnd   = "    ExecuteRequest:\n"
)

// OpenAPIProperties renders the table as the Limits schema's properties.
func OpenAPIProperties() string {
	var b strings.Builder
	for _, f := range fields() {
		schema := "{type: integer, minimum: 1}"
		if f.Unit == "cores" {
			schema = "{type: number, exclusiveMinimum: true, minimum: 0}"
		}
		fmt.Fprintf(&b, "        %s: %s\n", f.API, schema)
	}
	return b.String()
}

// RewriteOpenAPI returns doc with its Limits properties rendered anew.
func RewriteOpenAPI(doc string) (string, error) {
	before, rest, ok := strings.Cut(doc, OpenAPIStart)
	if !ok {
		return "", fmt.Errorf("no Limits schema (%q)", OpenAPIStart)
	}
	_, after, ok := strings.Cut(rest, OpenAPIEnd)
	if !ok {
		return "", fmt.Errorf("no %q after the Limits schema", OpenAPIEnd)
	}
	return before + OpenAPIStart + OpenAPIProperties() + OpenAPIEnd + after, nil
}
