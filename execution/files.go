package execution

import (
	"encoding/base64"
	"strings"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/errdefs"
	"github.com/sandboxd/sandboxd/rootfs"
)

// DecodeFiles checks a request's files and decodes their content: names
// are plain (no "/"), unique and valid for /work; content is UTF-8 or
// base64.
func DecodeFiles(in []api.File) ([]rootfs.File, error) {
	seen := map[string]bool{}
	out := make([]rootfs.File, 0, len(in))
	for i, f := range in {
		if strings.Contains(f.Name, "/") || f.Name == ".." {
			return nil, errdefs.Invalidf("files[%d]: name %q must not contain \"/\" or be \"..\"", i, f.Name)
		}
		if err := rootfs.CheckName(f.Name); err != nil {
			return nil, errdefs.Invalidf("files[%d]: %v", i, err)
		}
		if seen[f.Name] {
			return nil, errdefs.Invalidf("files[%d]: duplicate name %q", i, f.Name)
		}
		seen[f.Name] = true
		var data []byte
		switch f.Encoding {
		case "", "utf8":
			data = []byte(f.Content)
		case "base64":
			var err error
			if data, err = base64.StdEncoding.DecodeString(f.Content); err != nil {
				return nil, errdefs.Invalidf("files[%d]: content is not valid base64", i)
			}
		default:
			return nil, errdefs.Invalidf("files[%d]: encoding %q: expected utf8 or base64", i, f.Encoding)
		}
		out = append(out, rootfs.File{Name: f.Name, Data: data, Mode: 0o644})
	}
	return out, nil
}
