package session

import (
	"regexp"
	"testing"
)

// A session id names the node that made it, and only that: OwnerOf reads
// it back whatever dots the node's name has.
func TestIDNamesItsNode(t *testing.T) {
	for _, node := range []string{"", "sandboxd-0", "pod.with.dots"} {
		id := newID(node)
		if !regexp.MustCompile(`^sb-[0-9a-f]{24}`).MatchString(id) {
			t.Errorf("newID(%q) = %q", node, id)
		}
		if got := OwnerOf(id); got != node {
			t.Errorf("OwnerOf(%q) = %q, want %q", id, got, node)
		}
	}
	for _, id := range []string{"nosuch", "sb-", "ex-0.sandboxd-1", "sb-0123"} {
		if got := OwnerOf(id); got != "" {
			t.Errorf("OwnerOf(%q) = %q, want none", id, got)
		}
	}
}
