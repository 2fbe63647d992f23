package images

import "strings"

// Messages of the store's errors cross the API, and docs/api.md promises
// that they never name a host path. The filesystem calls that unpack an
// image (openat2, pathrs-lite, os) put the whole host path of the build
// directory in theirs, so every error that leaves an unpack or an archive
// extraction has that directory rewritten to "/": the message then names
// the entry as the image has it ("openat2 /la: too many levels of
// symbolic links"). The error chain underneath is untouched, so classes
// still match with errors.Is, and the caller logs the original.

// relativeError is an error whose message names paths inside an image
// instead of the host directory that holds them.
type relativeError struct {
	msg string
	err error
}

func (e *relativeError) Error() string { return e.msg }
func (e *relativeError) Unwrap() error { return e.err }

// withinDir rewrites every mention of the host directory dir in err's
// message to "/", the root dir stands for. err is returned as it is when
// its message does not name dir.
func withinDir(err error, dir string) error {
	if err == nil || dir == "" {
		return err
	}
	msg := err.Error()
	out := strings.ReplaceAll(msg, strings.TrimSuffix(dir, "/")+"/", "/")
	out = strings.ReplaceAll(out, dir, "/")
	if out == msg {
		return err
	}
	return &relativeError{msg: out, err: err}
}

// public is the last rewrite before an error leaves the store: anything
// still naming the state directory (a path the steps above did not know)
// names it as "<state>".
func (s *Store) public(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if !strings.Contains(msg, s.dir) {
		return err
	}
	s.log.Warn("image error named the state directory", "err", err)
	return &relativeError{msg: strings.ReplaceAll(msg, s.dir, "<state>"), err: err}
}
