package entry

// The entry itself is C (entry.c), linked into every binary that imports
// this package and run from an ELF constructor before the Go runtime.

// #cgo CFLAGS: -O2 -Wall -Wextra
import "C"
