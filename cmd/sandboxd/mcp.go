package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/urfave/cli/v2"

	"github.com/sandboxd/sandboxd/client"
	"github.com/sandboxd/sandboxd/mcpserver"
)

// mcpCommand is `sandboxd mcp`: an MCP server on stdin and stdout, for an
// agent host to spawn, whose tools call a daemon (docs/mcp.md).
func mcpCommand() *cli.Command {
	return &cli.Command{
		Name:  "mcp",
		Usage: "serve the Model Context Protocol on stdin/stdout, forwarding to a daemon",
		Description: "An agent host (Claude Desktop, an IDE, an SDK client) spawns it as a local MCP server.\n" +
			"Its tools call the daemon on --socket, or on --url (http:// on loopback, https://) with a token\n" +
			"(--token, $SANDBOXD_TOKEN or $SANDBOXD_TOKEN_FILE). See docs/mcp.md.",
		Flags: []cli.Flag{
			socketFlag,
			&cli.StringFlag{Name: "url", Usage: "the daemon's TCP listener, http://HOST:PORT or https://HOST:PORT, instead of --socket"},
			&cli.StringFlag{Name: "token", Usage: "bearer token (JWT) for --url or the socket", EnvVars: []string{"SANDBOXD_TOKEN"}},
		},
		OnUsageError: oneLineUsageError,
		Action: func(c *cli.Context) error {
			cl, err := mcpClient(c)
			if err != nil {
				return err
			}
			s := mcpserver.New(cl, mcpserver.Options{Version: version})
			if err := s.Run(c.Context, &mcp.StdioTransport{}); err != nil && !errors.Is(err, mcp.ErrConnectionClosed) {
				return fmt.Errorf("mcp: %w", err)
			}
			return nil
		},
	}
}

// mcpClient is the client of the daemon the tools call: --url with a
// token, else the socket (with a token when one is given).
func mcpClient(c *cli.Context) (*client.Client, error) {
	tok := c.String("token")
	if f := os.Getenv("SANDBOXD_TOKEN_FILE"); tok == "" && f != "" {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("$SANDBOXD_TOKEN_FILE: %w", err)
		}
		tok = strings.TrimSpace(string(data))
	}
	raw := c.String("url")
	if raw == "" {
		if tok != "" {
			return client.NewWithToken(c.String("socket"), tok), nil
		}
		return client.New(c.String("socket")), nil
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("--url %q: expected http://HOST:PORT or https://HOST:PORT", raw)
	}
	if tok == "" {
		return nil, errors.New("--url needs a token: --token, $SANDBOXD_TOKEN or $SANDBOXD_TOKEN_FILE")
	}
	switch u.Scheme {
	case "http":
		return client.NewTCP(u.Host, tok, nil), nil
	case "https":
		return client.NewTCP(u.Host, tok, &tls.Config{MinVersion: tls.VersionTLS12}), nil
	}
	return nil, fmt.Errorf("--url %q: the scheme must be http or https", raw)
}
