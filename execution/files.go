package execution

import (
	"encoding/base64"
	"path"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/errdefs"
	"github.com/sandboxd/sandboxd/rootfs"
)

// DecodeFiles checks a request's files and decodes their content: names
// are relative paths under /work ("src/util/H.java"; rootfs.CheckName
// says which), unique, and no file is also another's directory; content
// is UTF-8 or base64. Directories are made when the files are written.
func DecodeFiles(in []api.File) ([]rootfs.File, error) {
	seen := map[string]bool{} // names, and "/"-suffixed directories
	out := make([]rootfs.File, 0, len(in))
	for i, f := range in {
		if err := rootfs.CheckName(f.Name); err != nil {
			return nil, errdefs.Invalidf("files[%d]: %v", i, err)
		}
		if seen[f.Name] {
			return nil, errdefs.Invalidf("files[%d]: duplicate name %q", i, f.Name)
		}
		if seen[f.Name+"/"] {
			return nil, errdefs.Invalidf("files[%d]: %q is also a directory of another file", i, f.Name)
		}
		for d := path.Dir(f.Name); d != "."; d = path.Dir(d) {
			if seen[d] {
				return nil, errdefs.Invalidf("files[%d]: %q is inside %q, which is a file", i, f.Name, d)
			}
			seen[d+"/"] = true
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
