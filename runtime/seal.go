package runtime

import (
	"fmt"
	"os"

	"github.com/opencontainers/runc/libcontainer/exeseal"
	"golang.org/x/sys/unix"
)

// ReexecSealed re-executes the running binary, once, from a sealed
// read-only memfd copy of itself. libcontainer runs its init from
// /proc/self/exe; when that is already a sealed copy it uses it as is,
// instead of sealing a fresh copy for every sandbox (the CVE-2019-5736
// protection). A long-running daemon thus pays for the copy once. It
// returns only on error, or at once when the binary already runs sealed.
func ReexecSealed() error {
	if exeseal.IsSelfExeCloned() {
		return nil
	}
	self, err := os.Open("/proc/self/exe")
	if err != nil {
		return fmt.Errorf("sealing own binary: %w", err)
	}
	defer self.Close()
	st, err := self.Stat()
	if err != nil {
		return fmt.Errorf("sealing own binary: %w", err)
	}
	sealed, err := exeseal.CloneBinary(self, st.Size(), "/proc/self/exe", os.TempDir())
	if err != nil {
		return fmt.Errorf("sealing own binary: %w", err)
	}
	path := fmt.Sprintf("/proc/self/fd/%d", sealed.Fd())
	return fmt.Errorf("re-executing sealed binary: %w", unix.Exec(path, os.Args, os.Environ()))
}
