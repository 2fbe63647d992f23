package runtime

import (
	"golang.org/x/sys/unix"

	"github.com/sandboxd/sandboxd/api"
)

// Status and Result are the API's (package api, a leaf every layer may
// use): the engine produces exactly what the API and `sandboxd exec
// --json` return, with no conversion in between.
type (
	Status = api.Status
	Result = api.Result
)

// The statuses, in the order in which they take precedence.
const (
	StatusMemoryLimit   = api.StatusMemoryLimit
	StatusOutputLimit   = api.StatusOutputLimit
	StatusTimeLimit     = api.StatusTimeLimit
	StatusWallTimeLimit = api.StatusWallTimeLimit
	StatusRuntimeError  = api.StatusRuntimeError
	StatusOK            = api.StatusOK
	StatusInternalError = api.StatusInternalError
)

// SignalName returns the conventional name of a signal ("SIGKILL").
func SignalName(sig unix.Signal) string {
	if name := unix.SignalName(sig); name != "" {
		return name
	}
	return "SIG" + sig.String()
}
