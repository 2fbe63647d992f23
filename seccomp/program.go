package seccomp

import (
	"errors"
	"fmt"
)

// sockFilterSize is sizeof(struct sock_filter): u16 code, u8 jt, u8 jf, u32 k.
// The sandbox's entry (runtime/entry/entry.c) installs the program.
const sockFilterSize = 8

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
