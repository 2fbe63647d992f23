package attacks_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/client"
)

// Attacks through POST /v1/images/pull: the caller names the registry,
// and the daemon, root in the host's network, connects to it. Without a
// rule, a pull is a way into the host's loopback services and the cloud
// metadata service (SSRF).

// TestPullDestinationAttacks runs them against the suite's daemon, which
// has no [images] registries: only registries at public addresses.
func TestPullDestinationAttacks(t *testing.T) {
	s := newSuite(t)
	a := attack{class: "daemon", name: "pull from the host's loopback service and the metadata service (SSRF)",
		expected: "400 invalid_request naming the registry, no connection", run: pullIntoTheHost}
	t.Run(a.class+"/"+a.name, func(t *testing.T) { s.runAttack(t, 950, a) })
}

// pullIntoTheHost asks for pulls from the suite's TCP service on
// 127.0.0.1 (by address and as localhost, streamed or not) and from
// 169.254.169.254. Each must be refused as invalid_request naming the
// registry and no other address; the host check (checkHost) then finds
// that the TCP service accepted no connection.
func pullIntoTheHost(t *testing.T, s *suite, marker string) (string, bool) {
	refs := []string{
		fmt.Sprintf("127.0.0.1:%d/%s:1", s.tcpPort, marker),
		fmt.Sprintf("localhost:%d/%s:1", s.tcpPort, marker),
		"169.254.169.254/latest/" + marker + ":1",
		"169.254.169.254:80/" + marker + ":1",
	}
	var seen []string
	ok := true
	for _, ref := range refs {
		for _, streamed := range []bool{false, true} {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			var err error
			if streamed {
				_, err = s.d.Client.PullProgress(ctx, ref, "", nil)
			} else {
				_, err = s.d.Client.Pull(ctx, ref, "")
			}
			cancel()
			registry, _, _ := strings.Cut(ref, "/")
			var ce *client.Error
			refused := errors.As(err, &ce) && ce.Code == "invalid_request" &&
				strings.Contains(ce.Message, registry) && strings.Contains(ce.Message, "not allowed")
			if !refused {
				ok = false
				msg := fmt.Sprint(err)
				if len(msg) > 160 {
					msg = msg[:160] + "…"
				}
				seen = append(seen, registry+": "+msg)
			}
		}
	}
	if n := s.tcpAccepts.Load(); n > 0 {
		ok = false
		seen = append(seen, fmt.Sprintf("loopback service accepted %d", n))
	}
	if ok {
		return fmt.Sprintf("%d pulls refused, no connection", 2*len(refs)), true
	}
	return strings.Join(seen, "; "), false
}
