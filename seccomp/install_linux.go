package seccomp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

const sockFilterSize = 8 // struct sock_filter: u16 code, u8 jt, u8 jf, u32 k

func validate(prog []byte) error {
	switch {
	case len(prog) == 0:
		return errors.New("seccomp: empty program")
	case len(prog)%sockFilterSize != 0:
		return fmt.Errorf("seccomp: program length %d is not a multiple of %d", len(prog), sockFilterSize)
	case len(prog)/sockFilterSize > 0xffff:
		return errors.New("seccomp: program too long")
	}
	return nil
}

// Install puts prog in force for every thread of the calling process, so
// that all later children inherit it. It sets no_new_privs first, which the
// kernel requires of an unprivileged caller. SECCOMP_FILTER_FLAG_SPEC_ALLOW
// is deliberately not passed: untrusted code keeps the kernel's
// speculative-execution mitigations.
func Install(prog []byte) error {
	if err := validate(prog); err != nil {
		return err
	}
	filters := make([]unix.SockFilter, len(prog)/sockFilterSize)
	for i := range filters {
		b := prog[i*sockFilterSize:]
		filters[i] = unix.SockFilter{
			Code: binary.NativeEndian.Uint16(b[0:2]),
			Jt:   b[2],
			Jf:   b[3],
			K:    binary.NativeEndian.Uint32(b[4:8]),
		}
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("seccomp: no_new_privs: %w", err)
	}
	fprog := unix.SockFprog{Len: uint16(len(filters)), Filter: &filters[0]}
	_, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
		unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog)))
	if errno != 0 {
		return fmt.Errorf("seccomp: installing filter: %w", errno)
	}
	return nil
}
