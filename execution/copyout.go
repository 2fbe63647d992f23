package execution

import (
	"encoding/base64"
	"fmt"
	"unicode/utf8"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/errdefs"
	"github.com/sandboxd/sandboxd/rootfs"
)

// CopyOut is a request's "collect": what to read back from /work after a
// run, and the budget for it.
type CopyOut struct {
	Patterns []string
	Limits   rootfs.CollectLimits
}

// Bounds of "collect".
const (
	DefaultCollectBytes = 1 << 20 // collect_bytes when the request sets none
	MaxCollectPatterns  = 64
	MaxCollectFiles     = 1000 // entries listed per run
)

// ParseCopyOut checks a request's collect and collect_bytes: at most
// MaxCollectPatterns paths or globs, each a valid name under /work, and a
// positive budget of at most max bytes.
func ParseCopyOut(patterns []string, bytes *int64, max int64) (CopyOut, error) {
	c := CopyOut{Limits: rootfs.CollectLimits{Bytes: min(DefaultCollectBytes, max), Files: MaxCollectFiles}}
	if bytes != nil {
		if len(patterns) == 0 {
			return c, errdefs.Invalidf(`"collect_bytes" needs "collect"`)
		}
		if *bytes <= 0 || *bytes > max {
			return c, errdefs.Invalidf("collect_bytes must be between 1 and the configured maximum %d", max)
		}
		c.Limits.Bytes = *bytes
	}
	if len(patterns) > MaxCollectPatterns {
		return c, errdefs.Invalidf("collect: at most %d paths", MaxCollectPatterns)
	}
	for i, p := range patterns {
		if err := rootfs.CheckPattern(p); err != nil {
			return c, errdefs.Invalidf("collect[%d]: %v", i, err)
		}
	}
	c.Patterns = patterns
	return c, nil
}

// read collects into res.Files.
func (c CopyOut) read(sb Sandbox, res *api.Result) error {
	got, err := sb.CollectPaths(c.Patterns, c.Limits)
	if err != nil {
		return err
	}
	res.Files = make([]api.OutputFile, 0, len(got))
	for _, f := range got {
		out := api.OutputFile{Name: f.Name, Size: f.Size, Truncated: f.Truncated, Missing: f.Missing, Type: f.Type}
		if !f.Missing && f.Type == "" {
			out.Mode = fmt.Sprintf("%04o", f.Mode.Perm())
			out.Content = string(f.Data)
			if !utf8.Valid(f.Data) {
				out.Content, out.Encoding = base64.StdEncoding.EncodeToString(f.Data), "base64"
			}
		}
		res.Files = append(res.Files, out)
	}
	return nil
}
