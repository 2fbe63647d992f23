// Command genopenapi rewrites the Limits schema of api/openapi.yaml from
// the limits table (`go generate ./limits`).
package main

import (
	"fmt"
	"os"

	"github.com/sandboxd/sandboxd/limits"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: genopenapi OPENAPI.yaml")
		os.Exit(2)
	}
	path := os.Args[1]
	data, err := os.ReadFile(path)
	if err == nil {
		var out string
		if out, err = limits.RewriteOpenAPI(string(data)); err == nil {
			err = os.WriteFile(path, []byte(out), 0o644)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "genopenapi:", err)
		os.Exit(1)
	}
}
