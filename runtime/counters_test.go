package runtime

import (
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/rootfs"
)

// The daemon's start-up warning names the host's pseudo-terminals when the
// sandboxes running at once could take more than half of what devpts
// instances other than the host's share.
func TestCounterWarningsNamePseudoTerminals(t *testing.T) {
	ptyMax, ok1 := readUint("/proc/sys/kernel/pty/max")
	reserve, ok2 := readUint("/proc/sys/kernel/pty/reserve")
	if !ok1 || !ok2 || ptyMax <= reserve {
		t.Fatalf("kernel.pty.max %d, reserve %d: unreadable", ptyMax, reserve)
	}
	over := int((ptyMax-reserve)/2/rootfs.PtyMax) + 1
	has := func(n int) bool { return strings.Contains(strings.Join(CounterWarnings(n), "\n"), "pseudo-terminals") }
	if !has(over) {
		t.Errorf("%d sandboxes (%d terminals of %d shared): no warning", over, over*rootfs.PtyMax, ptyMax-reserve)
	}
	if has(1) {
		t.Error("one sandbox: a warning")
	}
}
