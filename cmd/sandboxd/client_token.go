package main

import (
	"os"
	"strings"

	"github.com/sandboxd/sandboxd/client"
)

// clientFor returns a client for the socket that sends a bearer token when
// one is given in $SANDBOXD_TOKEN or in the file $SANDBOXD_TOKEN_FILE (for
// a daemon run with --require-auth, or to be known by the token's subject).
func clientFor(socket string) *client.Client {
	tok := os.Getenv("SANDBOXD_TOKEN")
	if f := os.Getenv("SANDBOXD_TOKEN_FILE"); tok == "" && f != "" {
		if data, err := os.ReadFile(f); err == nil {
			tok = strings.TrimSpace(string(data))
		}
	}
	if tok == "" {
		return client.New(socket)
	}
	return client.NewWithToken(socket, tok)
}
